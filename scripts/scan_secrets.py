"""Secret scan of the tracked files (detect-secrets); exits 1 when anything is found."""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    files = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = [f for f in files if not f.endswith((".lock", ".svg", ".png", ".ipynb"))]
    result = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", *files],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout)["results"]
    if found:
        for path, items in found.items():
            for item in items:
                print(f"{path}:{item['line_number']}: {item['type']}")
        print(f"{sum(len(v) for v in found.values())} secret(s) potentiel(s) trouvé(s).")
        return 1
    print(f"detect-secrets : aucun secret dans {len(files)} fichiers suivis.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
