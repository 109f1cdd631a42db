#!/usr/bin/env bash
# One session on a lent GPU machine, inside 8 minutes: the CUDA tests (tests/test_cuda.py) and
# the GPU benchmark (benchmarks/gpu_train.py); everything it writes goes under $OUT.
#
# The GPU machine has torch but no PyAV and no network (../shared/device/README.md), so first,
# here, from the project root:   bash ../shared/device/wheels.sh      (fills .whl/)
# then one device call:          carry [".whl"], command: bash benchmarks/gpu_session.sh
# Where there is no .whl/ (a machine with network), it installs with pip install -e '.[test]'.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 RNNKIT_CACHE="${TMPDIR:-/tmp}/rnnkit-cache"
started=$SECONDS
note() { echo "[$((SECONDS - started)) s] $*" | tee -a "$OUT/session.txt"; }

if compgen -G ".whl/*.whl" >/dev/null; then
  # the project's wheel brings its entry points (plugins); the working tree comes first on the
  # path, so the code that runs is this checkout's
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl >"$OUT/install.txt" 2>&1
  installed=$?
  export PYTHONPATH="$PWD:$PWD/plugins:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
  python3 -m pip install -q -e '.[test]' >"$OUT/install.txt" 2>&1
  installed=$?
fi
note "install: exit $installed"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'nccl', '.'.join(map(str, torch.cuda.nccl.version())), 'bf16', torch.cuda.is_bf16_supported(), \
'gpus', torch.cuda.device_count())"
  python3 -c "import av, rnnvision_kit; print('av', av.__version__, 'rnnvision_kit', \
rnnvision_kit.__version__, rnnvision_kit.__file__)"
  nproc
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. CUDA tests (skip reasons listed with -rs), then 2. the benchmark; each with a time limit
timeout 210 python3 -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider \
  --junitxml "$OUT/test_cuda.xml" >"$OUT/test_cuda.txt" 2>&1
note "pytest tests/test_cuda.py: exit $? (124: timed out)"

timeout 220 python3 benchmarks/gpu_train.py --device cuda --json "$OUT/gpu.json" \
  >"$OUT/gpu_train.txt" 2>&1
note "benchmarks/gpu_train.py: exit $? (124: timed out; gpu.json keeps the parts done)"

echo "----- tests"; tail -n 40 "$OUT/test_cuda.txt"
echo "----- benchmark"; tail -n 60 "$OUT/gpu_train.txt"
echo "----- session"; cat "$OUT/session.txt"
