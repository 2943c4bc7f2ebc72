"""Property tests (hypothesis) for the template parser and the truncation rule."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pet.encoding import _truncate
from pet.spec import FieldRef, Literal, Mask, parse_template

text = st.text(alphabet=st.sampled_from(list("ab {}|:\"'.!?\\")), max_size=30)


@given(text)
@settings(max_examples=200, deadline=None)
def test_escaped_literal_text_round_trips(s):
    escaped = s.replace("{", "{{").replace("}", "}}")
    segs = parse_template(escaped + "{text_a}{mask}")
    assert segs[-2:] == (FieldRef("text_a"), Mask())
    assert "".join(x.text for x in segs[:-2] if isinstance(x, Literal)) == s


@given(st.lists(st.integers(0, 300), min_size=1, max_size=4), st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_truncation_cuts_longest_first(lengths, budget):
    out = _truncate(lengths, budget)
    assert all(0 <= o <= n for o, n in zip(out, lengths))
    if sum(lengths) <= budget:
        assert out == lengths
    else:
        assert sum(out) == budget
        # a field is only cut if no other field is left longer than it by more than one token
        for i, (o, n) in enumerate(zip(out, lengths)):
            if o < n:
                assert all(out[j] <= o + 1 for j in range(len(out)))
