"""Soft (trained-vector) prompts: prompt tuning, P-tuning and deep prompts.

A soft prompt plugs into :class:`pet.models.prompt_model.PromptModel` through its ``prompt_encoder`` hook,
which is called as ``prompt_encoder(inputs_embeds, batch)`` right before the encoder runs. The
template decides *where* soft tokens go (``{soft}``, ``{soft:N}``, ``{soft:"It was"}``); the
encoding reports those slots per example as ``batch["soft_positions"]`` (truncation never cuts
them), and the modules here decide *what* goes there:

``prompt-tuning`` (Lester et al. 2021)
    One trained vector per soft token, written into the input embeddings. Initialised from the
    embeddings of the template's init words (``{soft:"It was"}``), else of token ids sampled
    from the vocabulary (seeded, special tokens skipped). With init words an untrained prompt
    scores exactly like the hard prompt with those words.
``p-tuning`` (Liu et al. 2021, "GPT understands, too")
    The soft-token vectors are the output of a prompt encoder (bi-LSTM + MLP head, or an MLP)
    over trained input vectors; the LM may stay frozen or be tuned too. Hard anchor words
    between soft tokens are just template text.
``deep`` (P-tuning v2 / prefix tuning, Liu et al. 2022; Li & Liang 2021)
    A trained vector per soft token *at every layer*: layer 0 through the input embeddings
    (as prompt tuning), layers 1…L-1 through forward pre-hooks on the encoder layers that
    overwrite the hidden states at the soft positions. See ``docs/soft.md`` for why this and
    not key/value prefixes. The per-layer prompt length is the template's number of soft
    tokens; :func:`with_soft_prefix` adds virtual tokens right after ``[CLS]`` when a
    template has none.

Optionally (``SoftConfig.verbalizer="soft"``) the verbalizer is soft too (WARP, Hambardzumyan et
al. 2021): trained label embeddings score the mask's hidden state after the MLM head's transform,
initialised from the verbalizer words' output embeddings and biases, so an untrained soft
verbalizer scores exactly like the hard one for single-token words.

Saving goes through :class:`pet.estimator.classifier.PetClassifier` (a soft-prompt method's fitted stages
are :class:`pet.methods.predictors.PromptEnsemble` s): the soft parameters go to
``soft_prompts/<i>.safetensors`` (with the ``SoftConfig`` and PVP in ``pet_config.json``) and the
LM they sit on to ``models/<j>/`` — frozen or tuned — so that a saved folder is self-contained;
``PetClassifier.load(dir)`` rebuilds the exact model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..prompts.encoding import PVPEncoder, collate
from ..errors import ConfigError, ModelError
from ..examples import Example
from ..options import Options, option
from ..prompts.spec import PVP
from ..prompts.template import Literal, Mask, Soft, render_template  # noqa: F401  (render_template: re-exported)

METHODS = ("prompt-tuning", "p-tuning", "deep")
ENCODERS = ("lstm", "mlp")
INITS = ("words", "vocab-sample")
VERBALIZERS = ("hard", "soft")
TUNES = ("frozen", "full")


# ----------------------------------------------------------------------------- config


@dataclass
class SoftConfig(Options):
    """How a soft prompt is built: an options dataclass (:mod:`pet.options`), so its checks,
    help and the soft-prompt methods' flags (:class:`pet.methods.soft.SoftOptions`, whose fields
    are declared with ``same_option(SoftConfig, …)``) come from these declarations.

    ``verbalizer="soft"`` is WARP-style: trained label embeddings score the mask's
    head-transformed hidden state (see :class:`SoftVerbalizer`).
    """

    where: ClassVar[str] = "soft config"

    method: str = option("prompt-tuning", "kind of soft prompt: prompt-tuning (input vectors), p-tuning (a prompt encoder) or deep (per-layer vectors)", choices=METHODS)
    encoder: str = option("lstm", "p-tuning prompt encoder: lstm (bi-LSTM + MLP, as Liu et al.) or mlp", choices=ENCODERS)
    hidden_size: int | None = option(None, "prompt-encoder width (null: the LM's hidden size)", min=1)
    lstm_layers: int = option(2, "LSTM depth of the p-tuning encoder", min=1)
    init: str = option("words", "soft-token initialisation: words (the template's init words, vocabulary samples elsewhere) or vocab-sample", choices=INITS)
    seed: int = option(13, "seeds the vocabulary sample and the prompt encoder's initialisation")
    tune: str = option("frozen", "whether the LM trains with the prompt: frozen or full", choices=TUNES)
    prompt_length: int | None = option(None, "number of soft tokens (= deep prompts' per-layer length; null: the template's, a number must match it)", min=1)
    verbalizer: str = option("hard", "hard (the PVP's words via the MLM head) or soft (trained label embeddings)", choices=VERBALIZERS)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | "SoftConfig" | None = None, where: str | None = None, **overrides: Any) -> "SoftConfig":
        """A config from a mapping (a saved ``pet_config.json`` entry); a ``SoftConfig`` is returned as is."""
        if isinstance(d, SoftConfig) and not overrides:
            return d
        return super().from_dict(d, where, **overrides)


# ----------------------------------------------------------------------------- templates


def soft_before_mask(pvp: PVP, n: int = 4) -> PVP:
    """The default mixed soft PVP built from a hard one: ``{soft:n}`` right before ``{mask}``
    (``{text_a} It was {mask}.`` → ``{text_a} It was {soft:4} {mask}.``); same verbalizer."""
    segs = []
    for s in pvp.pattern.segments:
        if isinstance(s, Mask):
            segs.append(Soft(n))
            segs.append(Literal(" "))
        segs.append(s)
    pattern = pvp.pattern.derive(f"{pvp.pattern.id}+soft{n}", segs, source=f"pet: {{soft:{n}}} before the mask of '{pvp.pattern.id}'")
    return PVP(pattern, pvp.verbalizer)


def with_soft_prefix(pvp: PVP, n: int) -> PVP:
    """``n`` virtual tokens prepended to the template (right after ``[CLS]``/``<s>``): how a
    template without soft tokens gets prompt positions, e.g. for deep prompts."""
    if n < 1:
        raise ConfigError(f"soft prefix length {n}; fix: use a positive integer")
    pattern = pvp.pattern.derive(
        f"{pvp.pattern.id}+prefix{n}",
        [Soft(n), Literal(" "), *pvp.pattern.segments],
        source=f"pet: {n} soft tokens prepended to '{pvp.pattern.id}'",
    )
    return PVP(pattern, pvp.verbalizer)


# ----------------------------------------------------------------------------- helpers


def insert_soft(embeds: torch.Tensor, positions: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Write ``vectors`` ([S, H], or [B, S, H]) into ``embeds`` [B, T, H] at ``positions`` [B, S].

    Vectorised and out of place (``index_put``), so gradients reach ``vectors``.
    """
    B, S = positions.shape
    if S == 0:
        return embeds
    rows = torch.arange(B, device=embeds.device).unsqueeze(1).expand(B, S)
    vals = vectors.to(embeds.dtype)
    if vals.dim() == 2:
        vals = vals.unsqueeze(0).expand(B, S, vals.shape[-1])
    return embeds.index_put((rows, positions.to(embeds.device)), vals)


def sample_vocab_ids(tokenizer, n: int, seed: int, vocab_size: int | None = None) -> list[int]:
    """``n`` distinct token ids drawn uniformly (seeded) from the vocabulary, skipping special
    tokens and reserved slots such as BERT's ``[unused7]`` — never simply the first rows."""
    if n <= 0:
        return []
    V = min(len(tokenizer), vocab_size or len(tokenizer))
    special = set(tokenizer.all_special_ids)
    g = torch.Generator().manual_seed(int(seed))
    out: list[int] = []
    for i in torch.randperm(V, generator=g).tolist():
        if i in special:
            continue
        tok = tokenizer.convert_ids_to_tokens(i)
        if not tok or (tok[0] == "[" and tok[-1] == "]") or (tok[0] == "<" and tok[-1] == ">"):
            continue
        out.append(i)
        if len(out) == n:
            return out
    raise ModelError(f"the tokenizer has fewer than {n} ordinary tokens to initialise soft prompts from")


def init_token_ids(encoder: PVPEncoder, config: SoftConfig) -> list[int]:
    """Per soft token, the id whose embedding initialises it (init words, else sampled)."""
    given = encoder.soft_init_ids if config.init == "words" else [None] * encoder.n_soft
    sampled = iter(sample_vocab_ids(encoder.tokenizer, sum(i is None for i in given), config.seed))
    return [i if i is not None else next(sampled) for i in given]


def encoder_layers(model) -> nn.ModuleList:
    """The list of transformer layers of a PromptModel's encoder (BERT, RoBERTa, MPNet,
    ELECTRA, XLM-R, DeBERTa: ``encoder.layer``; DistilBERT: ``transformer.layer``)."""
    base = model.encoder
    for path in ("encoder.layer", "encoder.layers", "transformer.layer", "layers", "layer"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    raise ModelError(
        f"deep prompts: cannot find per-layer modules in {type(base).__name__} (ALBERT shares one layer across "
        "depth); fix: use prompt-tuning or p-tuning with this model"
    )


# ----------------------------------------------------------------------------- modules


class SoftPrompt(nn.Module):
    """Base: holds the config and what is needed to rebuild it; inserts vectors at soft slots.

    Only soft parameters are registered on the module (never the LM), so ``state_dict()`` and
    ``parameters()`` are exactly what is trained and saved.
    """

    def __init__(self, config: SoftConfig, encoder: PVPEncoder, hidden: int):
        super().__init__()
        self.config = config
        self.n_soft = encoder.n_soft
        self.hidden = hidden
        self.meta = {
            "pvp": encoder.pvp.to_dict(),
            "labels": list(encoder.labels),
            "max_length": int(encoder.max_length),
        }

    def prompt_vectors(self) -> torch.Tensor:  # [n_soft, H]
        raise NotImplementedError

    def forward(self, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        positions = batch["soft_positions"]
        if positions.shape[1] != self.n_soft:
            raise ModelError(
                f"soft prompt has {self.n_soft} tokens but the batch has {positions.shape[1]} soft slots; "
                "fix: encode with the PVP the soft prompt was attached for"
            )
        return insert_soft(inputs_embeds, positions, self.prompt_vectors())

    def detach_hooks(self) -> None:
        """Remove hooks this prompt put on the LM (deep prompts; the soft verbalizer's override)."""
        self._detach_verbalizer()

    def _detach_verbalizer(self) -> None:
        ref = self.__dict__.get("_model_ref")
        model = ref() if ref is not None else None
        if model is not None and model.__dict__.get("label_scores") is self.__dict__.get("_scores_fn"):
            model.__dict__.pop("label_scores", None)


class PromptTuning(SoftPrompt):
    """Lester et al.: one trained input vector per soft token."""

    def __init__(self, config, encoder, init: torch.Tensor):
        super().__init__(config, encoder, init.shape[1])
        self.embeddings = nn.Parameter(init.clone())

    def prompt_vectors(self) -> torch.Tensor:
        return self.embeddings


class PTuning(SoftPrompt):
    """Liu et al. (P-tuning v1): soft tokens = prompt encoder(trained input vectors).

    lstm: 2-layer bi-LSTM then a 2-layer MLP head (ReLU), as in the paper's code; mlp: the
    2-layer MLP alone. All soft tokens are encoded together, so the LSTM ties them.
    """

    def __init__(self, config, encoder, init: torch.Tensor):
        H = init.shape[1]
        super().__init__(config, encoder, H)
        width = config.hidden_size or H
        self.embeddings = nn.Parameter(init.clone())
        if config.encoder == "lstm":
            self.lstm = nn.LSTM(H, max(1, width // 2), num_layers=config.lstm_layers, bidirectional=True, batch_first=True)
            head_in = 2 * max(1, width // 2)
        else:
            self.lstm = None
            head_in = H
        self.mlp = nn.Sequential(nn.Linear(head_in, width), nn.ReLU(), nn.Linear(width, H))

    def prompt_vectors(self) -> torch.Tensor:
        x = self.embeddings
        if self.lstm is not None:
            x = self.lstm(x.unsqueeze(0))[0].squeeze(0)
        return self.mlp(x)


class DeepPrompt(SoftPrompt):
    """P-tuning v2 style deep prompts as per-layer hidden-state prompts.

    ``embeddings`` [S, H] go into the input embeddings (layer 0); ``layer_prompts``
    [L-1, S, H] overwrite the input hidden states of layers 1…L-1 at the soft positions
    through forward pre-hooks. The soft positions are ordinary attended tokens, so every
    other position attends to the prompt at every layer.
    """

    def __init__(self, config, encoder, init: torch.Tensor, layers: nn.ModuleList):
        super().__init__(config, encoder, init.shape[1])
        self.embeddings = nn.Parameter(init.clone())
        self.layer_prompts = nn.Parameter(init.new_zeros(len(layers) - 1, self.n_soft, init.shape[1]))
        self._positions: torch.Tensor | None = None
        self._enabled = True
        self._n_layers = len(layers)
        self._handles = [
            layer.register_forward_pre_hook(self._make_hook(i), with_kwargs=True) for i, layer in enumerate(layers) if i > 0
        ]

    def prompt_vectors(self) -> torch.Tensor:
        return self.embeddings

    def forward(self, inputs_embeds, batch):
        out = super().forward(inputs_embeds, batch)
        self._positions = batch["soft_positions"].to(inputs_embeds.device) if self._enabled else None
        return out

    def _make_hook(self, i: int):
        def hook(module, args, kwargs):
            pos = self._positions
            if pos is None:
                return None
            if i == self._n_layers - 1:
                self._positions = None  # one forward pass uses them once
            if args:
                h = args[0]
                if h.shape[0] != pos.shape[0]:
                    return None
                return (insert_soft(h, pos, self.layer_prompts[i - 1]), *args[1:]), kwargs
            key = "hidden_states" if "hidden_states" in kwargs else "x"
            h = kwargs[key]
            if h.shape[0] != pos.shape[0]:
                return None
            kwargs = dict(kwargs)
            kwargs[key] = insert_soft(h, pos, self.layer_prompts[i - 1])
            return args, kwargs

        return hook

    def detach_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._detach_verbalizer()

    @torch.no_grad()
    def init_layers_content_free(self, model, encoder: PVPEncoder, layers: nn.ModuleList) -> None:
        """Initialise layer prompts to the hidden states the soft positions get, layer by layer,
        on a content-free input (every field empty) with only the input-level prompt active:
        the untrained deep prompt then reproduces that prompt-tuning forward pass on it, and
        starts at the scale the frozen layers expect."""
        ex = Example({f: "" for f in encoder.pvp.pattern.fields}, None, "content-free")
        batch = collate(encoder.encode([ex]), encoder.tokenizer.pad_token_id or 0)
        pos = batch["soft_positions"][0].to(model.device)
        captured: dict[int, torch.Tensor] = {}

        def grab(i):
            def hook(module, args, kwargs):
                h = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))
                captured[i] = h[0, pos].detach().clone()

            return hook

        handles = [layer.register_forward_pre_hook(grab(i), with_kwargs=True) for i, layer in enumerate(layers) if i > 0]
        was_training, self._enabled = model.training, False
        model.eval()
        try:
            model.mask_logits(batch, encoder.verbalizer_tokens.n_masks)
        finally:
            for h in handles:
                h.remove()
            self._enabled = True
            self._positions = None
            model.train(was_training)
        for i in range(1, self._n_layers):
            if i in captured:
                self.layer_prompts.data[i - 1] = captured[i].to(self.layer_prompts.dtype)


class SoftVerbalizer(nn.Module):
    """WARP-style verbalizer: label ``l`` scores ``t(h) · e_l + b_l`` where ``t(h)`` is the MLM
    head's transform of the hidden state at the first mask (the input of the head's output
    projection) and ``e_l``, ``b_l`` are trained. ``e_l``/``b_l`` start at the mean output
    embedding/bias of the first sub-token of the label's words.

    Installed by :func:`attach_soft_prompt` as ``model.label_scores`` (instance override), so
    training (:func:`pet.training.prompt.train_prompt_model`) and prediction use it unchanged; its
    parameters live in the soft prompt module, so they train with ``soft_lr`` and are saved.
    """

    def __init__(self, model, vt):
        super().__init__()
        out = model.mlm.get_output_embeddings()
        if model.head is None or out is None or not hasattr(out, "weight"):
            raise ModelError(f"soft verbalizer: {type(model.mlm).__name__} has no output projection to read; fix: use verbalizer='hard'")
        W = out.weight.detach()
        b = out.bias.detach() if getattr(out, "bias", None) is not None else W.new_zeros(W.shape[0])
        L = len(vt.labels)
        emb = W.new_zeros(L, W.shape[1])
        bias = W.new_zeros(L)
        count = torch.zeros(L)
        for w in range(vt.token_ids.shape[0]):
            lab, tid = int(vt.word_label[w]), int(vt.token_ids[w, 0])
            emb[lab] += W[tid]
            bias[lab] += b[tid]
            count[lab] += 1
        self.label_embeddings = nn.Parameter((emb / count[:, None].to(emb)).float().clone())
        self.label_bias = nn.Parameter((bias / count.to(bias)).float().clone())
        object.__setattr__(self, "_projection", out)

    def scores(self, model, batch, vt) -> torch.Tensor:
        captured: dict[str, torch.Tensor] = {}

        def grab(module, args):
            captured["x"] = args[0]

        h = self._projection.register_forward_pre_hook(grab)
        try:
            model.mask_logits(batch, 1)
        finally:
            h.remove()
        x = captured["x"].reshape(batch["input_ids"].shape[0], -1, captured["x"].shape[-1])[:, 0]
        return x.float() @ self.label_embeddings.T + self.label_bias


# ----------------------------------------------------------------------------- attach


def attach_soft_prompt(model, encoder: PVPEncoder, config: SoftConfig | dict | None = None) -> SoftPrompt:
    """Build the soft prompt for ``encoder``'s PVP, set ``model.prompt_encoder`` and return it.

    The template must contain soft tokens (``{soft:N}`` …); for a hard template use
    :func:`soft_before_mask` or :func:`with_soft_prefix` first. Replaces (and unhooks) any
    soft prompt already attached. The LM's own parameters are not touched; which of them
    train is the training loop's business (``TrainConfig.tune``).
    """
    config = SoftConfig.from_dict(config)
    if encoder.n_soft == 0:
        raise ConfigError(
            f"pattern '{encoder.pvp.pattern.id}': template {encoder.pvp.pattern.template!r} has no soft tokens, so a "
            f"{config.method} prompt has nowhere to go; fix: add {{soft:N}} to the template (or use "
            "pet.models.soft.with_soft_prefix / soft_before_mask)"
        )
    if config.prompt_length is not None and config.prompt_length != encoder.n_soft:
        raise ConfigError(
            f"soft config: prompt_length = {config.prompt_length} but pattern '{encoder.pvp.pattern.id}' has "
            f"{encoder.n_soft} soft tokens; fix: make them equal or leave prompt_length unset"
        )
    if encoder.tokenizer is not model.tokenizer and len(encoder.tokenizer) != len(model.tokenizer):
        raise ModelError("soft prompt: the encoder's tokenizer is not the model's; fix: use model.encoder_for(pvp)")
    old = getattr(model, "prompt_encoder", None)
    if old is not None and hasattr(old, "detach_hooks"):
        old.detach_hooks()
    model.prompt_encoder = None

    emb = model.mlm.get_input_embeddings().weight
    ids = init_token_ids(encoder, config)
    for i in ids:
        if not 0 <= i < emb.shape[0]:
            raise ModelError(f"soft prompt init token id {i} is outside the model's embedding matrix ({emb.shape[0]} rows)")
    init = emb.detach()[torch.tensor(ids, device=emb.device)].clone().float()

    if config.method == "prompt-tuning":
        module: SoftPrompt = PromptTuning(config, encoder, init)
    elif config.method == "p-tuning":
        torch.manual_seed(config.seed)  # LSTM/MLP initialisation
        module = PTuning(config, encoder, init)
    else:
        layers = encoder_layers(model)
        module = DeepPrompt(config, encoder, init, layers)
    if config.verbalizer == "soft":
        import types
        import weakref

        module.verbalizer = SoftVerbalizer(model, encoder.verbalizer_tokens)

        def label_scores(self_model, batch, vt, _v=module.verbalizer):
            return _v.scores(self_model, {k: v.to(self_model.device) for k, v in batch.items()}, vt)

        fn = types.MethodType(label_scores, model)
        object.__setattr__(module, "_model_ref", weakref.ref(model))
        object.__setattr__(module, "_scores_fn", fn)
        model.__dict__["label_scores"] = fn
    module.to(model.device)
    model.prompt_encoder = module
    if isinstance(module, DeepPrompt):
        module.init_layers_content_free(model, encoder, encoder_layers(model))
    return module
