"""Executes a notebook headless with nbclient (a real Jupyter kernel, as a researcher
would run it): `python run_notebook.py NOTEBOOK.ipynb WORKDIR`. Settings come from the
environment, as each notebook documents. Fails on the first cell error. Writes the
executed notebook to WORKDIR and prints a JSON summary with the text of every output."""

import json
import os
import sys

import nbformat
from nbclient import NotebookClient

path, workdir = sys.argv[1], sys.argv[2]
os.makedirs(workdir, exist_ok=True)
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
text = []
images = 0
for cell in nb.cells:
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            text.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            text.append(o.data.get("text/plain", ""))
            images += "image/png" in o.data
nbformat.write(nb, os.path.join(workdir, "executed-" + os.path.basename(path)))
print(json.dumps({"cells": len(nb.cells), "images": images, "text": "\n".join(text)}))
