"""Prints the README's code block tagged `<!-- ci:NAME -->`, so that CI runs
the README's own commands rather than copies of them.

    python .ci/readme_block.py NAME [README]

The tag is an HTML comment on the line before the fence (invisible when the
README is rendered). Exits with 2 and a message when the tag is missing, so a
README edit that drops a block CI runs fails CI instead of skipping it.
"""

import re
import sys
from pathlib import Path


def block(text: str, name: str) -> str:
    pattern = re.compile(r"^<!-- ci:" + re.escape(name) + r"\b[^>]*-->\n```[a-z]*\n(.*?)^```", re.M | re.S)
    found = pattern.findall(text)
    if len(found) != 1:
        raise SystemExit(f"README must hold exactly one code block tagged <!-- ci:{name} -->, found {len(found)}")
    return found[0]


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    readme = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parent.parent / "README.md"
    try:
        sys.stdout.write(block(readme.read_text(encoding="utf-8"), argv[1]))
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
