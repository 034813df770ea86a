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

Two smaller things a newcomer would otherwise meet
--------------------------------------------------
- The kernel is started on IPC sockets in a private temporary folder, not on TCP ports of
  127.0.0.1, so ipykernel has no reason to warn that it "is running over TCP without encryption".
- papermill's progress bar says ``Executing 19%`` and nothing else, for a cell that can run for
  many minutes. Here it names the section the running cell belongs to (the notebook's last
  ``#`` heading above it), e.g. ``§ 3 · Training the tile CNN``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import remove_args

__all__ = ["ENGINE_NAME", "HeadlessNotebookClient", "HeadlessEngine", "register", "section_titles"]

ENGINE_NAME = "mmsurv-headless"


class HeadlessNotebookClient(PapermillNotebookClient):
    """papermill's notebook client without nbclient's ``Output``-widget imitation (see the module notes)."""

    def on_comm_open_jupyter_widget(self, msg: dict[str, Any]) -> None:
        """Decline every widget comm: no widget object, so nothing is sent back to the kernel."""
        return None

    def create_kernel_manager(self) -> Any:
        """nbclient's kernel manager, on IPC sockets in a temporary folder instead of TCP ports."""
        manager = super().create_kernel_manager()
        folder = tempfile.mkdtemp(prefix="mmsurv-kernel-")
        manager.transport, manager.ip = "ipc", os.path.join(folder, "kernel")
        weakref.finalize(manager, shutil.rmtree, folder, True)
        return manager


def section_titles(cells: list[Any], width: int = 48) -> list[str]:
    """For each cell, the last Markdown heading at or above it, shortened to ``width`` characters.

    Parameters
    ----------
    cells : list of notebook cells
    width : int

    Returns
    -------
    list of str
        ``""`` for cells above the first heading.
    """
    titles, current = [], ""
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            headings = [line.lstrip("#").strip() for line in str(cell.get("source", "")).splitlines() if line.startswith("#")]
            if headings:
                current = headings[0] if len(headings[0]) <= width else headings[0][: width - 1] + "…"
        titles.append(current)
    return titles


def _name_sections_in_progress_bar(nb_man: Any) -> None:
    """Make ``nb_man``'s progress bar show the running cell's section (see the module notes)."""
    titles = section_titles(nb_man.nb.cells)
    original = nb_man.cell_start

    def cell_start(cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        original(cell, cell_index, **kwargs)
        bar = getattr(nb_man, "pbar", None)
        if bar and cell_index is not None and titles[cell_index]:
            bar.set_description(f"§ {titles[cell_index]}", refresh=True)

    nb_man.cell_start = cell_start


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
        _name_sections_in_progress_bar(nb_man)
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
