#!/usr/bin/env bash
# Run slices of the benchmark files side by side on one GPU machine, stop them at a deadline, and
# export the rows they stored (benchmark driver, not a test).
#
#   PET_MODEL=../shared/models/minilm-mlm PET_DATA_DIR=../shared/data \
#       bash benchmarks/gpu_slices.sh DEADLINE_SECONDS OUT_DIR [SLICES_FILE]
#
# Each line of SLICES_FILE (default: benchmarks/gpu_slices.txt, the flagship's next slices) is `<experiment file> <store> [pet bench
# arguments…]`; every slice runs as its own `pet bench` process (one CPU thread each: the GPU
# does the work; one process per slice keeps a small model's kernel launches from queueing
# behind one another). A line may chain runs with ` ;; ` (`<file> <store> [args] ;; <file> <store>
# [args]`): they run one after another in that slice, so a pet-setfit-paper cell run with
# `--keep-members` hands its PVP models to the PET cell of the same split (docs/bench.md, "Shared members"). At DEADLINE_SECONDS the slices still running are stopped: a cell is
# stored whole or not at all, so what was computed stays and a later run resumes from the
# store. Then, per store, the rows added since the start go to OUT_DIR/<store name>.new.jsonl
# (and new errors to OUT_DIR/<store name>.errors.jsonl), and every slice's log tail to
# OUT_DIR/slices.log. Merge the new rows into the same store here with
# `python benchmarks/merge_store_rows.py OUT_DIR/<store>.new.jsonl <store>` (docs/bench.md,
# "Slices on another machine"). Set PET_GIT_COMMIT to the commit of the copied tree.
set -u
deadline=${1:?deadline in seconds}
out=${2:?output folder}
slices=${3:-}
mkdir -p "$out"
logs=$(mktemp -d)  # per-slice logs (their tails go to OUT_DIR/slices.log)
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1  # PYTHON (default python3): the interpreter that has pet
list=$(cat "${slices:-benchmarks/gpu_slices.txt}")

declare -A before before_err
stores=$(echo "$list" | sed 's/ ;; /\n/g' | awk 'NF {print $2}' | sort -u)
for s in $stores; do
  before[$s]=$(cat "$s/results.jsonl" 2>/dev/null | wc -l)
  before_err[$s]=$(cat "$s/errors.jsonl" 2>/dev/null | wc -l)
done

pids=()
i=0
while read -r line; do
  [ -z "${line// }" ] && continue
  i=$((i + 1))
  (
    while read -r file store rest; do
      [ -z "$file" ] && continue
      # shellcheck disable=SC2086
      "${PYTHON:-python3}" -m pet bench "$file" --results "$store" $rest --threads 1 --no-report --no-progress
    done <<< "$(echo "$line" | sed 's/ ;; /\n/g')"
  ) > "$logs/slice$i.log" 2>&1 &
  pids+=($!)
  echo "slice $i (pid $!): $line"
done <<< "$list"

start=$SECONDS
while [ $((SECONDS - start)) -lt "$deadline" ]; do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  [ "$alive" -eq 0 ] && break
  sleep 5
done
for p in "${pids[@]}"; do  # the slice's shell first (no next run starts), then its running `pet bench`
  kids=$(pgrep -P "$p" 2>/dev/null)
  kill "$p" 2>/dev/null
  [ -n "$kids" ] && kill $kids 2>/dev/null
done
sleep 3
echo "stopped after $((SECONDS - start)) s"

for s in $stores; do
  name=$(basename "$s")
  tail -n +$((before[$s] + 1)) "$s/results.jsonl" > "$out/$name.new.jsonl" 2>/dev/null
  tail -n +$((before_err[$s] + 1)) "$s/errors.jsonl" > "$out/$name.errors.jsonl" 2>/dev/null
  echo "$s: $(wc -l < "$out/$name.new.jsonl") new lines, $(wc -l < "$out/$name.errors.jsonl") new errors"
done
for j in $(seq 1 $i); do echo "== slice $j"; tail -n 4 "$logs/slice$j.log" | cut -c1-300; done > "$out/slices.log"
