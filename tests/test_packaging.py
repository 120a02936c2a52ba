"""templates/ and schemas/ ship inside the wheel and are found from an installed, non-editable copy."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_templates_and_schemas_and_installed_copy_finds_them(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, ROOT],
        check=True, capture_output=True,
    )
    (wheel,) = wheels.glob("xtuner_recipes-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("templates/medqa.py", "templates/oasst1.py", "templates/msagent.py", "schemas/settings.schema.json"):
        assert f"xtuner_recipes/{expected}" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
                   check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import xtuner_recipes.resources as r, sys; "
        "print(r.resource_dir('templates')); print(r.resource_dir('schemas')); "
        "from xtuner_recipes.cli import main; sys.exit(main(['gen', 'msagent', '--model', './m']))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    templates, schemas = result.stdout.splitlines()[:2]
    assert Path(templates) == site / "xtuner_recipes" / "templates"
    assert Path(schemas) == site / "xtuner_recipes" / "schemas"
    assert (work / "m_qlora_msagent_e3.py").is_file()
