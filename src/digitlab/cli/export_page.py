"""``digitlab export-page``: MLPaint as a static site that predicts in the browser, with no server."""

from __future__ import annotations

from pathlib import Path

import typer

from digitlab.cli._common import FormatOption, HomeOption, OutputFormat, console, emit, print_table, settings_from

__all__ = ["export_page_command"]


def export_page_command(
    out: Path = typer.Option(..., "--out", help="Folder of the site: new, empty, or an earlier export (replaced)."),
    model: str = typer.Option("default", "--model", help="Saved model to run in the browser ('default' = the "
                                                         "bundled CNN)."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Write MLPaint as a static site (HTML, JS, ONNX Runtime Web's wasm, the model) for any static host.

    The page normalises the drawing and runs the model in the visitor's browser:
    nothing is sent anywhere. Serve the folder over HTTP(S), e.g.
    `python -m http.server -d DIR` (browsers do not run a page's modules from file://).
    """
    from digitlab.export_page import export_page

    result = export_page(out, model=model, settings=settings_from(home=home))

    def render() -> None:
        print_table(["file", "bytes"], list(result.files.items()),
                    title=f"{result.model} in the browser: {len(result.files)} files, "
                          f"{result.total_bytes / 1e6:.1f} MB in {result.path}")
        console.print(f"Serve it with any static host, e.g. [bold]python -m http.server -d {result.path}[/bold]",
                      highlight=False)

    emit({"path": result.path, "model": result.model, "bytes": result.total_bytes, "files": result.files}, fmt,
         columns=["file", "bytes"] if fmt is OutputFormat.csv else None,
         rows=list(result.files.items()) if fmt is OutputFormat.csv else None, render=render)
