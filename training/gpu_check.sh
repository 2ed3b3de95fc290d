#!/usr/bin/env bash
# GPU smoke check of the training stack, offline, in ~2-5 minutes on one GPU:
#   synthetic trajectories (agents.prompt format) -> tiny Qwen3 model -> training/sft.py under `accelerate launch`
#   with bf16 for ~20 steps -> the saved checkpoint generates one reply through the hf: agent.
# Prints versions, device, dtype, every loss and the save path; exits non-zero on any problem.
#
# Usage: bash training/gpu_check.sh [--steps N] [--out DIR] [--model TINY_CKPT] [--data JSONL|DIR]
#                                   [--wheels DIR] [--allow-cpu]
#   --wheels DIR   install the `train` extra from wheels shipped along first (pip --no-index)
#   --allow-cpu    run without CUDA (fp32), to test this script on a CPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
steps=20 out="" model="" data="" wheels="" allow_cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --allow-cpu) allow_cpu=1; shift ;;
    *) echo "gpu check: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${out:-$(mktemp -d /tmp/cligym-gpu-check.XXXXXX)}"
mkdir -p "$out"
if [ -n "$wheels" ]; then
  "$PY" -m pip install -q --no-index --find-links "$wheels" -e ".[train]"
fi

# 1. versions and device
"$PY" - "$allow_cpu" "$out/cuda" <<'EOF'
import sys
import accelerate, datasets, peft, tokenizers, torch, transformers, trl
print(f"torch {torch.__version__} transformers {transformers.__version__} trl {trl.__version__} peft {peft.__version__} "
      f"datasets {datasets.__version__} accelerate {accelerate.__version__} tokenizers {tokenizers.__version__}")
if torch.cuda.is_available():
    print(f"device: cuda ({torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()})")
elif sys.argv[1] != "1":
    sys.exit("gpu check: FAILED: torch sees no CUDA device (pass --allow-cpu to run on CPU)")
else:
    print("device: cpu (--allow-cpu)")
open(sys.argv[2], "w").write("1" if torch.cuda.is_available() else "0")
EOF
cuda=$(cat "$out/cuda")

# 2. data and the tiny model
if [ -z "$data" ]; then
  data="$out/conversations.jsonl"
  "$PY" - "$data" <<'EOF'
import json, sys
from agents.prompt import format_reply, initial_messages, observation_message, submit_reply
with open(sys.argv[1], "w") as f:
    for i in range(32):
        module = ["yaml", "requests", "attr", "click"][i % 4]
        m = initial_messages(f"The tests fail with ModuleNotFoundError: No module named '{module}'.")
        m += [{"role": "assistant", "content": format_reply("Check pip.", "pip list | head")},
              {"role": "user", "content": observation_message("pip 24.0\n", 0)},
              {"role": "assistant", "content": format_reply(f"Install {module}.", f"pip install {module}")},
              {"role": "user", "content": observation_message("Successfully installed\n", 0)},
              {"role": "assistant", "content": submit_reply()}]
        f.write(json.dumps({"messages": m}) + "\n")
EOF
fi
if [ -z "$model" ]; then
  model="$out/tiny"
  "$PY" -m training.tiny_model --data "$data" --out "$model" 2>/dev/null
fi

# 3. SFT under accelerate launch (1 process), bf16 on CUDA
if [ "$cuda" = 1 ]; then launch=(--mixed_precision bf16); precision=(--bf16 true); else launch=(--cpu); precision=(--bf16 false); fi
"$PY" -m accelerate.commands.launch --num_processes 1 --num_machines 1 --dynamo_backend no "${launch[@]}" \
  -m training.sft --config training/configs/tiny-cpu.yaml --model_name_or_path "$model" --dataset "$data" \
  --output_dir "$out/sft" --max_steps "$steps" --logging_steps 1 --disable_tqdm true "${precision[@]}"

# 4. check the result: finite, falling loss; the checkpoint loads and generates on the device
"$PY" - "$out/sft" "$cuda" <<'EOF'
import json, math, sys
from pathlib import Path
import torch
from agents.hf import HFPolicy
from agents.prompt import initial_messages
path, cuda = Path(sys.argv[1]), sys.argv[2] == "1"
result = json.loads((path / "sft_result.json").read_text())
losses = [x for stage in result["stages"] for x in stage["losses"]]
print("losses:", " ".join(f"{x:.4f}" for x in losses))
print("precision:", result["precision"], "| device:", result["device"])
problems = []
if not losses or not all(math.isfinite(x) for x in losses):
    problems.append("no or non-finite losses")
elif not sum(losses[-3:]) < sum(losses[:3]):
    problems.append("loss did not go down")
if cuda and (result["precision"] != "bf16" or not result["device"].startswith("cuda")):
    problems.append("did not train in bf16 on CUDA")
policy = HFPolicy(str(path), max_new_tokens=32)
param = next(policy.model.parameters())
print(f"inference: {param.device} {param.dtype}")
action = policy.act(initial_messages("The tests fail with ModuleNotFoundError: No module named 'yaml'."))
print(f"reply: {action.message[:200]!r} -> command {action.command!r}")
if cuda and (param.device.type != "cuda" or param.dtype != torch.bfloat16):
    problems.append("inference not on CUDA in bf16")
print("saved:", path.resolve())
if problems:
    sys.exit("gpu check: FAILED: " + "; ".join(problems))
print("gpu check: OK")
EOF
