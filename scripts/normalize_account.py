"""Rule normalize: decode every raw window of one account, reusing the tables of unchanged windows."""

import json
from pathlib import Path

from tandem_export import ids, runlog
from tandem_export.errors import InputError
from tandem_export.normalize import WindowSpec, normalize_store
from tandem_export.storage import atomic_path


def stores(params, inputs) -> dict[str, list[WindowSpec]]:
    """The account's windows grouped by store (one pump, or the imported files), in window order."""
    out: dict[str, list[WindowSpec]] = {}
    if params.source == "tandem":
        # The manifest is a saved file: every name in it that reaches a path is checked in full.
        try:
            manifest = json.loads(Path(inputs[0]).read_text(encoding="utf-8"))
            for pump in manifest["pumps"]:
                serial = ids.checked(ids.SERIAL, pump["serial"], "pump serial")
                windows = [ids.checked(ids.GRID_WINDOW, w, f"pump {serial} window") for w in pump["windows"]]
                out[serial] = [
                    WindowSpec(w, Path(params.raw_root) / serial / f"{w}.json", serial, f"pump {serial} window {w}")
                    for w in windows
                ]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{inputs[0]}: not a fetch manifest written by this pipeline ({exc}); run again with --forcerun fetch"
            ) from None
        return out
    for store, window, raw, serial, origin in params.windows:
        out.setdefault(store, []).append(WindowSpec(window, Path(raw), serial, origin or raw))
    return out


def body(log):
    params = snakemake.params  # noqa: F821
    windows = []  # every store's index entries, in order: the account's index (normalize.read_index reads it)
    for store, specs in stores(params, snakemake.input).items():  # noqa: F821
        folder = Path(params.out_root) / store
        normalize_store(specs, folder, folder / "index.json", log, threads=snakemake.threads)  # noqa: F821
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        windows += index["windows"]
        if any(spec.pump_serial == "UNKNOWN" for spec in specs):
            log.warning(
                "%s: no pump serial known for these events (labelled UNKNOWN); set pump_serial for each file, or "
                "file_pump_serial, so that files of different pumps are not merged",
                store,
            )
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        tmp.write_text(json.dumps({"store": None, "windows": windows}, indent=1), encoding="utf-8")


runlog.run(snakemake, "normalize", body)  # noqa: F821
