"""Rule normalize: decode every raw window of one account, reusing the tables of unchanged windows."""

import json
from pathlib import Path

from tandem_export import runlog
from tandem_export.normalize import WindowSpec, normalize_store
from tandem_export.storage import atomic_path


def stores(params, inputs) -> dict[str, list[WindowSpec]]:
    """The account's windows grouped by store (one pump, or the imported files), in window order."""
    out: dict[str, list[WindowSpec]] = {}
    if params.source == "tandem":
        manifest = json.loads(Path(inputs[0]).read_text(encoding="utf-8"))
        for pump in manifest["pumps"]:
            serial = pump["serial"]
            out[serial] = [
                WindowSpec(w, Path(manifest["raw_root"]) / serial / f"{w}.json", serial, f"pump {serial} window {w}")
                for w in pump["windows"]
            ]
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
