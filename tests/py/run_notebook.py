"""Runs a notebook's code cells in order in one namespace, as Jupyter would (no
kernel needed): `python run_notebook.py NOTEBOOK.ipynb`. Settings come from the
environment, as the notebook documents. Exits non-zero on the first failing cell."""

import json
import sys

nb = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for i, cell in enumerate(nb["cells"]):
    if cell["cell_type"] != "code":
        continue
    src = "".join(cell["source"])
    try:
        exec(compile(src, f"{sys.argv[1]}#cell{i}", "exec"), ns)
    except Exception as e:  # noqa: BLE001
        print(f"cell {i} failed: {type(e).__name__}: {e}", file=sys.stderr)
        raise
print(json.dumps({"rows": ns["df"].height, "columns": ns["df"].columns, "extract": ns["manifest"]["extract_id"]}))
