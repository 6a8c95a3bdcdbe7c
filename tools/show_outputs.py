"""Print a notebook's stored text outputs (for reviewing a page in the terminal)."""
import sys

import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
for i, cell in enumerate(nb.cells):
    if cell.cell_type != "code":
        continue
    for out in cell.outputs:
        if out.output_type == "stream":
            print(f"[{i} {out.name}]\n{out.text.rstrip()}")
        elif out.output_type == "error":
            print(f"[{i} ERROR] {out.ename}: {out.evalue}")
        elif out.output_type in ("display_data", "execute_result"):
            kinds = [k for k in out.get("data", {}) if not k.startswith("application/papermill")]
            if kinds:
                print(f"[{i} {out.output_type}] {kinds}")
print("seconds:", nb.metadata.get("wmbook", {}).get("seconds"))
