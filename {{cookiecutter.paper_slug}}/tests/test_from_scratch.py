"""From-scratch guard: the model code does not use the high-level building blocks
the method says to write yourself.

The list is in tests/write_yourself.txt, one fully qualified name per line; edit
it when the paper really does use a built-in. Built-ins stay welcome in tests, as
references to check your own version against (see the pitfall tests).
"""

from __future__ import annotations

import ast
from pathlib import Path

import {{ cookiecutter.package_name }} as package

GUARDED_MODULES = ("model.py", "loss.py")
LIST = Path(__file__).with_name("write_yourself.txt")


def forbidden_names() -> set[str]:
    lines = (line.split("#")[0].strip() for line in LIST.read_text().splitlines())
    return {line for line in lines if line}


def used_names(source: str) -> set[str]:
    """Fully qualified names a module uses: ``from torch import nn`` then
    ``nn.MultiheadAttention`` gives ``torch.nn.MultiheadAttention``."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    used = set(aliases.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts = []
            inner = node
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                used.add(".".join([aliases[inner.id], *reversed(parts)]))
    return used


def is_forbidden(name: str, forbidden: set[str]) -> bool:
    """An entry forbids itself and everything under it (``timm`` forbids ``timm.create_model``)."""
    return any(name == entry or name.startswith(entry + ".") for entry in forbidden)


def test_model_code_writes_the_paper_s_components_itself():
    forbidden = forbidden_names()
    assert forbidden, f"{LIST.name} lists nothing"
    for module in GUARDED_MODULES:
        source = (Path(package.__file__).parent / module).read_text()
        found = sorted(name for name in used_names(source) if is_forbidden(name, forbidden))
        assert not found, (
            f"{module} uses {found}: write these yourself (or, if the paper uses the "
            f"built-in, remove them from {LIST.name})"
        )


def test_the_guard_sees_through_aliases():
    source = (
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "from torch.nn import MultiheadAttention as MHA\n"
        "y = F.scaled_dot_product_attention(q, k, v)\n"
        "layer = nn.TransformerEncoderLayer(8, 2)\n"
    )
    used = used_names(source)
    assert "torch.nn.functional.scaled_dot_product_attention" in used
    assert "torch.nn.TransformerEncoderLayer" in used
    assert "torch.nn.MultiheadAttention" in used
    assert is_forbidden("timm.create_model", {"timm"}) and not is_forbidden("timmy", {"timm"})
