#!/usr/bin/env bash
# One prepared run on a lent GPU machine (about 9 minutes), from the repository root:
#   GPU tests; `bench gpu` (frames/s at batch 1/16/64, float32/bfloat16/float16, CUDA graphs on and off, the
#   reference on the same GPU); `bench precision` on the GPU (deviation and all-unit tuning time per precision);
#   on cores 2-3, when the CPU has AMX/AVX-512-BF16, `bench engine` and `bench precision` on 2 CPU threads; and
#   the foundation cores of 1, 2, 4 and 8 synthetic mice trained on the GPU (`train foundation --core-only`), their
#   recordings made on the other cores while the benchmarks run. Logs and the cores' checkpoints land in $OUT;
#   finish the cores anywhere with `twin-explorer train foundation` (same options, without --core-only).
# Sizes can be shrunk for a dry run: UNITS, FRAMES, NAT_FRAMES, MICE, MINUTES, NEURONS, STEPS (or STEPS_PER_MOUSE),
# DEVICE, BUDGET_S.
# BENCH=0 runs the GPU tests and the cores only; CORES_FROM=cores.tgz (a previous run's foundation-cores.tgz)
# resumes those cores from their checkpoints.
set -u
OUT=${OUT:-/tmp/gpu_session}
mkdir -p "$OUT"
START=$(date +%s)
BUDGET_S=${BUDGET_S:-560}  # everything, the copy of the cores included, ends before this many seconds
UNITS=${UNITS:-10000} FRAMES=${FRAMES:-30} NAT_FRAMES=${NAT_FRAMES:-300}
MICE=${MICE:-1,2,4,8} MINUTES=${MINUTES:-10} NEURONS=${NEURONS:-500} DEVICE=${DEVICE:-cuda}
STEPS_OPTION=${STEPS_PER_MOUSE:+--steps-per-mouse $STEPS_PER_MOUSE}  # STEPS_PER_MOUSE=400: n mice train n × 400 steps
STEPS_OPTION=${STEPS_OPTION:---steps ${STEPS:-1600}}
FOUNDATION=${FOUNDATION:-/tmp/foundation}
BENCH=${BENCH:-1}
[ -n "${CORES_FROM:-}" ] && mkdir -p "$FOUNDATION" && tar -C "$FOUNDATION" -xzf "$CORES_FROM"
LOGS=$(mktemp -d)  # $OUT brings back 8 files at most: the per-process logs are gathered into foundation.log
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
te() { python3 -m twin_explorer "$@"; }
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
step() {  # step NAME SECONDS command...: a bounded step whose failure does not end the run
  local name=$1 limit=$2; shift 2
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  [ "$limit" -lt 1 ] && limit=1
  echo "== $name ($(date +%T), ${limit} s at most)"
  timeout -k 20 "$limit" "$@"
  echo "== $name: exit $? after $(( $(date +%s) - START )) s of the run"
}

{
  nvidia-smi -L 2>&1; nproc; grep -m1 "model name" /proc/cpuinfo
  echo "bf16 CPU flags: $(grep -m1 -o -w -E 'amx_bf16|amx_tile|avx512_bf16|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/env.log"

# the training mice's recordings (CPU), one process a mouse, on the cores the benchmarks leave alone
CORES=$( [ "$(nproc)" -ge 8 ] && echo "4-$(( $(nproc) - 1 ))" || echo "0-$(( $(nproc) - 1 ))" )
taskset -c "$CORES" python3 - "$MICE" "$MINUTES" "$NEURONS" > "$LOGS/recordings.log" 2>&1 <<'EOF' &
import sys, time
from concurrent.futures import ProcessPoolExecutor

def record(seed):
    import torch
    torch.set_num_threads(1)
    from twin_explorer.training.data import RecordingCache
    from twin_explorer.training.foundation import FoundationSpec
    spec = FoundationSpec(n_mice=max(int(n) for n in sys.argv[1].split(",")), minutes=float(sys.argv[2]),
                          n_neurons=int(sys.argv[3]))
    t0 = time.time()
    RecordingCache(spec.recording(seed), None, False).train_clips()
    return seed, time.time() - t0

if __name__ == "__main__":
    from twin_explorer.training.foundation import FoundationSpec
    seeds = FoundationSpec(n_mice=max(int(n) for n in sys.argv[1].split(","))).mouse_seeds()
    with ProcessPoolExecutor(len(seeds)) as pool:
        for seed, seconds in pool.map(record, seeds):
            print(f"mouse {seed}: {sys.argv[2]} min of {sys.argv[3]} neurons recorded in {seconds:.0f} s", flush=True)
EOF
RECORDINGS=$!

# CPU reduced precision on 2 cores, beside the GPU work (which keeps to cores 0-1)
if [ "$BENCH" != 1 ]; then
  echo "BENCH=$BENCH: CPU benchmarks not run" > "$OUT/cpu.log"; CPU_BENCH=
elif grep -q -w -E "amx_bf16|avx512_bf16" /proc/cpuinfo && [ "$(nproc)" -ge 8 ]; then
  ( step "CPU engine, 2 threads" 200 taskset -c 2,3 python3 -m twin_explorer bench engine --device cpu --threads 2 \
      --units "$UNITS" --frames 8 --batch 16
    step "CPU precision, 2 threads" 300 taskset -c 2,3 python3 -m twin_explorer bench precision --device cpu \
      --threads 2 --units "$UNITS" --frames "$NAT_FRAMES" ) > "$OUT/cpu.log" 2>&1 &
  CPU_BENCH=$!
else
  echo "no AMX/AVX-512-BF16 (or under 8 cores): CPU bfloat16 not measured" > "$OUT/cpu.log"; CPU_BENCH=
fi

{
  step "GPU tests" 120 taskset -c 0,1 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
  [ "$BENCH" = 1 ] || exit 0
  step "bench gpu" 150 taskset -c 0,1 python3 -m twin_explorer bench gpu --units "$UNITS" --frames "$FRAMES" --float16
  step "bench precision (GPU)" 120 taskset -c 0,1 python3 -m twin_explorer bench precision --device "$DEVICE" \
    --units "$UNITS" --frames "$NAT_FRAMES"
} 2>&1 | tee "$OUT/gpu.log"

{
  step "recordings" "$(( $(left) - 60 ))" tail --pid=$RECORDINGS -f /dev/null
  cat "$LOGS/recordings.log"
  pids=()
  for n in ${MICE//,/ }; do  # one process a count: each core trains alone, the GPU is shared
    ( step "foundation core, $n mice" "$(( $(left) - 45 ))" python3 -m twin_explorer train foundation --core-only \
        --mice "$n" --minutes "$MINUTES" --neurons "$NEURONS" $STEPS_OPTION --device "$DEVICE" \
        -o "$FOUNDATION/count$n" --no-progress ) > "$LOGS/foundation-$n.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for n in ${MICE//,/ }; do tail -n 5 "$LOGS/foundation-$n.txt"; done
  python3 - "$FOUNDATION" <<'EOF'
import sys, torch
from pathlib import Path
for ckpt in sorted(Path(sys.argv[1]).glob("count*/mice*-work/checkpoint.pt")):
    h = torch.load(ckpt, weights_only=True, map_location="cpu")["history"]
    tail = h["loss"][-20:]
    print(f"{ckpt.parent.name}: {h['step']} steps in {h['seconds']:.0f} s ({h['seconds'] / max(1, h['step']):.3f} s/step) "
          f"on {h.get('steps_on_device')}; loss first 20 {sum(h['loss'][:20]) / 20:.4f}, last 20 {sum(tail) / max(1, len(tail)):.4f}")
EOF
  tar -C "$FOUNDATION" -czf "$OUT/foundation-cores.tgz" --exclude "*.tmp" . && ls -la "$OUT/foundation-cores.tgz"
} 2>&1 | tee "$OUT/foundation.log"

[ -n "$CPU_BENCH" ] && { step "CPU benchmarks to end" "$(left)" tail --pid=$CPU_BENCH -f /dev/null; }
cat "$OUT/cpu.log"
echo "run ended after $(( $(date +%s) - START )) s"
