"""A papermill engine for headless runs that does not stall on ``ipywidgets.Output`` cells.

Why it exists
-------------
nbclient (the executor under papermill) imitates a browser for one widget, ``Output``: while a
cell writes into an ``Output`` widget, nbclient copies each output into the widget's state and
*sends* that state back to the kernel as a ``comm_msg`` on the **shell** socket - the socket on
which another coroutine of the same client is waiting (``poll``) for the cell's
``execute_reply``. On a zmq socket driven from asyncio, a send can consume the edge-triggered
"readable" event that the pending poll needs, so the reply that has already arrived is only
noticed when that poll times out: the cell has finished in a fraction of a second, the runner
waits the whole cell timeout, and the cell is then counted as completed. It happens in some
runs and not others (a race), more often when the widget draws a large figure (measured: 1 run
in 5 of a one-cell notebook drawing a 1,500-px image into an ``Output``, each stalled run
taking exactly the cell timeout). See jupyter/nbclient#312.

The fix
-------
Headless runs do not need a frontend imitation: :class:`HeadlessNotebookClient` declines every
widget's ``comm_open`` (nothing is ever sent on the shell socket but the cells themselves), so
what a cell draws inside an ``Output`` widget lands in the cell's own outputs, where a reader
of the executed notebook can see it. The widgets' state is still stored in the notebook's
metadata. :func:`register` makes the engine available to ``papermill.execute_notebook`` as
``engine_name=ENGINE_NAME``.
"""

from __future__ import annotations

from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import remove_args

__all__ = ["ENGINE_NAME", "HeadlessNotebookClient", "HeadlessEngine", "register"]

ENGINE_NAME = "mmsurv-headless"


class HeadlessNotebookClient(PapermillNotebookClient):
    """papermill's notebook client without nbclient's ``Output``-widget imitation (see the module notes)."""

    def on_comm_open_jupyter_widget(self, msg: dict[str, Any]) -> None:
        """Decline every widget comm: no widget object, so nothing is sent back to the kernel."""
        return None


class HeadlessEngine(NBClientEngine):
    """papermill's nbclient engine, executing with :class:`HeadlessNotebookClient`."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Execute ``nb_man``'s notebook; the same arguments as :meth:`NBClientEngine.execute_managed_notebook`."""
        kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        client = HeadlessNotebookClient(
            nb_man,
            timeout=execution_timeout,
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            **kwargs,
        )
        return client.execute()


def register() -> str:
    """Register :class:`HeadlessEngine` with papermill (idempotent); returns its engine name."""
    papermill_engines.register(ENGINE_NAME, HeadlessEngine)
    return ENGINE_NAME
