"""``smoke``: prove a config trains, converts, merges and chats, on a tiny model of its architecture.

``run_smoke("internlm_chat_7b_qlora_medqa_e3.py", steps=4).stages`` are the stages ``model``, ``train``,
``pth_to_hf``, ``merge`` and ``chat``, each with its status.
"""

from xtuner_recipes.smoke.runner import SmokeResult, Stage, run_smoke

__all__ = ["SmokeResult", "Stage", "run_smoke"]
