"""MSAgent-Bench dialogues → ReAct-style conversations, without ever evaluating data.

The output equals xtuner's ``msagent_react_map_fn`` on every well-formed row.
Where that function calls ``eval`` on the row's ``conversations`` string and
quietly returns an empty conversation for rows it can't read, this one parses
the string as JSON (or as a Python literal, which is parsed, not run) and raises
``MSAgentFormatError`` naming what is wrong.

    >>> row = {"conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "hello"}]}
    >>> msagent_map_fn(row)["conversation"][0]["output"]
    'Final Answer:hello\\n'
"""

import ast
import json
import re
from collections.abc import Mapping

from xtuner_recipes.map_fns.conversation import passed_through
from xtuner_recipes.map_fns.errors import MSAgentFormatError

THINK_START, THINK_END = "<|startofthink|>", "<|endofthink|>"
EXEC_START, EXEC_END = "<|startofexec|>", "<|endofexec|>"
_THINK = re.compile(r"(.*?)" + re.escape(THINK_START) + r"(.*?)" + re.escape(THINK_END), re.DOTALL)
_EXEC = re.compile(re.escape(EXEC_START) + r"(.*?)" + re.escape(EXEC_END) + r"(.*?)$", re.DOTALL)

# The ReAct instructions xtuner's recipe trains with (kept verbatim: the trained
# model expects exactly this prompt).
_TOOLS_HEADER = "你是一个可以调用外部工具的助手，可以使用的工具包括：\n"
_REACT_RULES = (
    "如果使用工具请遵循以下格式回复：\n```\n"
    "Thought:思考你当前步骤需要解决什么问题，是否需要使用工具\n"
    "Action:工具名称，你的工具必须从 [{names}] 选择\n"
    "Action Input:工具输入参数\n```\n工具返回按照以下格式回复：\n```\n"
    "Response:调用工具后的结果\n```\n如果你已经知道了答案，或者你不需要工具，"
    "请遵循以下格式回复\n```\n"
    "Thought:给出最终答案的思考过程\n"
    "Final Answer:最终答案\n```\n开始!\n"
)


def parse_turns(conversations) -> list:
    """The list of turns in a row's ``conversations`` (a list, or a string holding one)."""
    if isinstance(conversations, str):
        try:
            conversations = json.loads(conversations)
        except (ValueError, RecursionError):
            try:
                conversations = ast.literal_eval(conversations)  # a literal is parsed, never run
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise MSAgentFormatError("'conversations' is neither JSON nor a Python literal") from None
    if not isinstance(conversations, list):
        raise MSAgentFormatError(f"'conversations' must be a list of turns, got {type(conversations).__name__}")
    if len(conversations) < 2:
        raise MSAgentFormatError(f"a dialogue needs at least two turns, got {len(conversations)}")
    for number, turn in enumerate(conversations, start=1):
        if not isinstance(turn, Mapping) or "from" not in turn or "value" not in turn:
            raise MSAgentFormatError(f"turn {number} must be an object with 'from' and 'value'")
        if turn["from"] in ("system", "user", "assistant") and not isinstance(turn["value"], str):
            raise MSAgentFormatError(f"turn {number} ({turn['from']}): 'value' must be a string")
    return conversations


def _tool_objects(text: str) -> list[dict]:
    """Every JSON object in ``text`` that has a ``name`` and a ``description``, outermost first."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, length = decoder.raw_decode(text[start:])
        except (ValueError, RecursionError):
            position = start + 1
            continue
        if isinstance(value, dict) and "name" in value and "description" in value:
            found.append(value)
            position = start + length
        else:
            position = start + 1
    return found


def _system_prompt(text: str) -> str:
    tools: dict = {}
    for tool in _tool_objects(text):
        try:
            tools[tool["name"]] = tool["description"]
        except TypeError:
            raise MSAgentFormatError(f"tool name must be a string, got {tool['name']!r}") from None
        try:
            parameters = {item["name"]: item["description"] for item in tool["paths"][0]["parameters"]}
            tools[tool["name"]] += f"\n输入参数: {parameters}"
        except Exception:  # noqa: BLE001 - a tool without a usable parameter list is described without one
            pass
    return _TOOLS_HEADER + f"{tools}\n" + _REACT_RULES.format(names=str(list(tools.keys())))


def _markup_json(text: str, what: str) -> object:
    cleaned = text.replace("```JSON", "").replace("```", "").replace("\n", "")
    try:
        return json.loads(cleaned)
    except (ValueError, RecursionError):
        raise MSAgentFormatError(f"unparseable {what} markup: {cleaned[:80]!r}") from None


def _action(match: re.Match) -> str:
    thought = match.group(1).strip()
    call = _markup_json(match.group(2), "tool-call")
    if not isinstance(call, dict) or "api_name" not in call or "parameters" not in call:
        raise MSAgentFormatError("a tool call needs 'api_name' and 'parameters'")
    head = f"Thought:{thought}\n" if thought else ""
    return head + f"Action:{call['api_name']}\nAction Input:{call['parameters']}\n"


def _response(match: re.Match) -> str:
    result = _markup_json(match.group(1), "tool-result")
    answer = match.group(2).strip()
    return f"Response:{result}\n" + (f"Final Answer:{answer}\n" if answer else "")


def _assistant_turns(text: str, system: str, user: str) -> list[dict]:
    """One or two turns: the reply (with its tool call) and, after a tool result, the final answer."""
    reply, marker, result = text.partition(EXEC_START)
    if EXEC_START in result:
        raise MSAgentFormatError("an assistant turn has more than one tool result")
    reply, calls = _THINK.subn(_action, reply)
    reply = f"{reply}\n" if calls else f"Final Answer:{reply}\n"
    turns = [{"system": system, "input": user, "output": reply}]
    if marker:
        observed = _EXEC.sub(_response, marker + result)
        if observed.count("Final Answer:") > 1:
            raise MSAgentFormatError("a tool result is followed by more than one 'Final Answer:'")
        if "Final Answer:" in observed:
            observation, answer = observed.split("Final Answer:")
            turns.append({"system": observation, "output": "Final Answer:" + answer})
    return turns


def msagent_map_fn(record: dict) -> dict:
    """Map one MSAgent-Bench row to ``{"conversation": [...]}`` in ReAct form.

    Raises ``MSAgentFormatError`` for a row it can't read; nothing in a row is executed.
    """
    if not isinstance(record, Mapping) or record.get("conversations") is None:
        passed = passed_through(record, MSAgentFormatError)  # `xtuner-recipes prepare msagent` output
        if passed is None:
            raise MSAgentFormatError("a row must have 'conversations' (or be in conversation form)")
        return passed
    conversation: list[dict] = []
    system = user = ""
    for turn in parse_turns(record["conversations"]):
        role, value = turn["from"], turn["value"]
        if role == "system":
            system += _system_prompt(value)
        elif role == "user":
            user += f"{value}\n"
        elif role == "assistant":
            conversation.extend(_assistant_turns(value, system, user))
            system = user = ""
    return {"conversation": conversation}
