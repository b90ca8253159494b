"""Tools a voice agent may call: the built-in call actions and the operator's HTTP tools.

tools.py       the tool set offered to a model, built from settings (AGENT_*, TRANSFER_TARGETS)
http_tools.py  custom tools from AGENT_TOOLS_FILE: checked at startup, called over HTTP
runner.py      one call's tool executions: arguments checked, the action taken, a result back

Nothing here knows a model's wire protocol: a backend turns a model's function call into
`ToolRunner.run(name, arguments)` and sends the result's `output` back its own way.
"""

from app.agent.runner import ToolResult, ToolRunner
from app.agent.tools import ToolConfig, ToolSpec, load_tool_config

__all__ = ["ToolConfig", "ToolResult", "ToolRunner", "ToolSpec", "load_tool_config"]
