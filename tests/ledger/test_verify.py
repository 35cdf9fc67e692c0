"""The standalone verifier: transparency-dev/merkle's vectors, tampering properties, isolation."""

from __future__ import annotations

import ast
import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.ledger import verify
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.proof import consistency_proof, inclusion_proof
from consentry.ledger.tree import MemoryNodeStore, append_leaves, root
from consentry.ledger.verify import (
    ProofError,
    RootMismatchError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors"
LEDGER_SRC = Path(verify.__file__).parent


def load_vectors(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(VECTORS))) for f in files]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_all_vectors_are_present() -> None:
    # A vector file lost in a copy must not shrink the suite silently.
    assert len(load_vectors("inclusion")) == 98
    assert len(load_vectors("consistency")) == 98
    assert (VECTORS / "LICENSE").is_file()
    assert (VECTORS / "ATTRIBUTION").is_file()


@pytest.mark.parametrize("case", load_vectors("inclusion"))
def test_inclusion_vector(case: dict[str, Any]) -> None:
    args = (
        b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [b64(p) for p in case["proof"] or []],
        b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", load_vectors("consistency"))
def test_consistency_vector(case: dict[str, Any]) -> None:
    args = (
        case["size1"],
        case["size2"],
        [b64(p) for p in case["proof"] or []],
        b64(case["root1"]),
        b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- properties over random trees ------------------------------------------------------------

_TREES: dict[int, tuple[MemoryNodeStore, list[bytes]]] = {}


def tree_of(size: int) -> tuple[MemoryNodeStore, list[bytes]]:
    """A deterministic tree per size (cached: hypothesis asks for the same sizes often)."""
    if size not in _TREES:
        leaves = [hash_leaf(i.to_bytes(4, "big") + b"event") for i in range(size)]
        store = MemoryNodeStore()
        append_leaves(store, leaves)
        _TREES[size] = (store, leaves)
    return _TREES[size]


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def path_shape(index: int, size: int) -> list[bool]:
    """Which side each proof hash goes on; equal shapes compute the same root from one proof."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return [bool(index >> level & 1) for level in range(inner)] + [True] * border


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=300, deadline=None)
@given(size=sizes, data=st.data())
def test_every_inclusion_proof_verifies_and_tampering_fails(size: int, data: st.DataObject) -> None:
    store, leaves = tree_of(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(store, index, size)
    tree_root = root(store, size)
    verify_inclusion(leaves[index], index, size, proof, tree_root)
    assert root_from_inclusion_proof(leaves[index], index, size, proof) == tree_root

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(RootMismatchError):
        verify_inclusion(leaves[index], index, size, proof, flip(tree_root, bit))
    with pytest.raises(RootMismatchError):
        verify_inclusion(flip(leaves[index], bit), index, size, proof, tree_root)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        tampered = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(RootMismatchError):
            verify_inclusion(leaves[index], index, size, tampered, tree_root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, proof[:-1], tree_root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, [*proof, tree_root], tree_root)

    other_index = data.draw(st.integers(min_value=0, max_value=size), label="other index")
    if other_index != index:
        # Another leaf's path has another shape (or length), so the same proof cannot fit it.
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], other_index, size, proof, tree_root)

    other_size = data.draw(st.integers(min_value=0, max_value=2 * size + 2), label="other size")
    if other_size != size:
        # Claimed against the real root of that other size, the proof always fails.
        other_root = root(*tree_of(other_size)[:1], other_size) if other_size else b"\0" * 32
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, other_size, proof, other_root)
        # Against this tree's root it fails too, unless both sizes give the leaf the same path
        # shape: then the computation is the same one and the (size, root) pair is what the
        # checkpoint's signature binds.
        if index >= other_size or path_shape(index, other_size) != path_shape(index, size):
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], index, other_size, proof, tree_root)


@settings(max_examples=300, deadline=None)
@given(size2=sizes, data=st.data())
def test_every_consistency_proof_verifies_and_tampering_fails(
    size2: int, data: st.DataObject
) -> None:
    store, _ = tree_of(size2)
    size1 = data.draw(st.integers(min_value=1, max_value=size2), label="size1")
    proof = consistency_proof(store, size1, size2)
    root1, root2 = root(store, size1), root(store, size2)
    verify_consistency(size1, size2, proof, root1, root2)

    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, proof, flip(root1, bit), root2)
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, proof, root1, flip(root2, bit))
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        tampered = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        with pytest.raises(RootMismatchError):
            verify_consistency(size1, size2, tampered, root1, root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof[:-1], root1, root2)
        with pytest.raises(RootMismatchError):
            verify_consistency(size1, size2, proof, root2, root1)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, [*proof, root1], root1, root2)

    # Wrong sizes, each with the true root of the size claimed: never verifies.
    other1 = data.draw(st.integers(min_value=1, max_value=size2), label="other size1")
    if other1 != size1:
        with pytest.raises(ProofError):
            verify_consistency(other1, size2, proof, root(store, other1), root2)
    other2 = data.draw(st.integers(min_value=size1, max_value=2 * size2 + 1), label="other size2")
    if other2 != size2:
        other_root2 = root(tree_of(other2)[0], other2)
        with pytest.raises(ProofError):
            verify_consistency(size1, other2, proof, root1, other_root2)


def test_wrong_index_never_verifies_exhaustively_up_to_40() -> None:
    for size in range(1, 41):
        store, leaves = tree_of(size)
        tree_root = root(store, size)
        for index in range(size):
            proof = inclusion_proof(store, index, size)
            for other in range(size):
                if other != index:
                    with pytest.raises(ProofError):
                        verify_inclusion(leaves[index], other, size, proof, tree_root)


def test_wrong_old_size_never_verifies_exhaustively_up_to_40() -> None:
    for size2 in range(1, 41):
        store, _ = tree_of(size2)
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(store, size1, size2)
            for other in range(1, size2 + 1):
                if other != size1:
                    for claimed_root in (root(store, size1), root(store, other)):
                        with pytest.raises(ProofError):
                            verify_consistency(
                                other, size2, proof, claimed_root, root(store, size2)
                            )


# --- error classes and argument checks --------------------------------------------------------


def test_malformed_is_proof_error_and_mismatch_is_root_mismatch() -> None:
    store, leaves = tree_of(5)
    proof = inclusion_proof(store, 2, 5)
    with pytest.raises(ProofError) as malformed:
        verify_inclusion(leaves[2], 2, 5, proof[:-1], root(store, 5))
    assert not isinstance(malformed.value, RootMismatchError)
    assert "must have 3 hashes" in str(malformed.value)
    with pytest.raises(RootMismatchError) as mismatch:
        verify_inclusion(leaves[2], 2, 5, proof, root(store, 4))
    assert mismatch.value.size == 5
    assert mismatch.value.expected == root(store, 4)
    assert mismatch.value.computed == root(store, 5)
    assert isinstance(mismatch.value, ValueError)


@pytest.mark.parametrize(
    ("index", "size"),
    [(-1, 5), (0, -1), (True, 5), (2**64, 2**64 + 1), (5, 5), (0, 0)],
)
def test_bad_index_or_size_is_malformed(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        root_from_inclusion_proof(b"\0" * 32, index, size, [])


def test_proof_elements_must_be_hashes() -> None:
    store, leaves = tree_of(4)
    proof = inclusion_proof(store, 1, 4)
    with pytest.raises(ProofError, match="33 bytes"):
        verify_inclusion(leaves[1], 1, 4, [proof[0] + b"x", proof[1]], root(store, 4))
    proof = consistency_proof(store, 3, 4)
    with pytest.raises(ProofError, match="31 bytes"):
        verify_consistency(3, 4, [proof[0][:-1], *proof[1:]], root(store, 3), root(store, 4))


def test_consistency_edge_cases() -> None:
    store, _ = tree_of(8)
    r1, r8 = root(store, 1), root(store, 8)
    verify_consistency(8, 8, [], r8, r8)
    with pytest.raises(RootMismatchError):
        verify_consistency(8, 8, [], r1, r8)
    with pytest.raises(ProofError, match="not empty"):
        verify_consistency(8, 8, [r8], r8, r8)
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 8, [], root(store, 0), r8)
    with pytest.raises(ProofError, match="smaller"):
        verify_consistency(8, 1, [], r8, r1)
    with pytest.raises(ProofError, match="empty consistency proof"):
        verify_consistency(1, 8, [], r1, r8)


# --- the file stands alone --------------------------------------------------------------------

PURE_MODULES = {"hasher", "tree", "proof", "verify"}


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(absolute top-level modules, relative module names) imported by a source file."""
    absolute: set[str] = set()
    relative: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.add(node.module or "")
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, relative


@pytest.mark.parametrize("name", sorted(PURE_MODULES))
def test_pure_modules_import_only_the_standard_library(name: str) -> None:
    absolute, relative = imports_of(LEDGER_SRC / f"{name}.py")
    assert absolute <= set(sys.stdlib_module_names) | {"__future__"}, absolute
    assert relative <= PURE_MODULES - {"verify"}, relative
    if name == "verify":
        assert not relative, "verify.py must not import anything of ours: it is copied alone"


def test_verify_py_runs_alone_outside_the_package(tmp_path: Path) -> None:
    shutil.copy(LEDGER_SRC / "verify.py", tmp_path / "verify.py")
    store, leaves = tree_of(13)
    script = f"""
import sys

class OnlyStdlib:
    # Refuse every import that is neither the standard library nor the copied file.
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in sys.stdlib_module_names and top != "verify":
            raise ImportError("not allowed here: " + name)
        return None

sys.meta_path.insert(0, OnlyStdlib())
from verify import verify_inclusion, verify_consistency, ProofError
verify_inclusion({leaves[6]!r}, 6, 13, {inclusion_proof(store, 6, 13)!r}, {root(store, 13)!r})
verify_consistency(5, 13, {consistency_proof(store, 5, 13)!r}, {root(store, 5)!r},
                   {root(store, 13)!r})
try:
    verify_inclusion({leaves[6]!r}, 7, 13, {inclusion_proof(store, 6, 13)!r}, {root(store, 13)!r})
except ProofError:
    print("ok")
"""
    (tmp_path / "audit.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "-E", "-s", str(tmp_path / "audit.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- docs/ledger.md's auditor walk-through runs as written -----------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def python_block(first_line: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```python\n" + first_line) + len("```python\n")
    return text[start : text.index("```", start)]


def test_docs_auditor_walkthrough_runs(tmp_path: Path) -> None:
    (tmp_path / "demo_log.py").write_text(python_block("# demo_log.py"))
    (tmp_path / "audit.py").write_text(python_block("# audit.py"))
    shutil.copy(LEDGER_SRC / "verify.py", tmp_path / "verify.py")
    src = str(LEDGER_SRC.parents[1])
    demo = subprocess.run(
        [sys.executable, "demo_log.py"],
        cwd=tmp_path,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr

    def audit() -> subprocess.CompletedProcess[str]:
        # No PYTHONPATH: the auditor's script must not need consentry.
        return subprocess.run(
            [sys.executable, "-E", "audit.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    result = audit()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verified: entry 123 is in the log of 1000 entries")

    bundle_path = tmp_path / "bundle.json"
    bundle = json.loads(bundle_path.read_text())
    for field, tamper in [
        ("event", lambda v: v.replace("123", "124")),
        ("inclusion_proof", lambda v: [base64.b64encode(bytes(32)).decode(), *v[1:]]),
        ("latest_checkpoint", lambda v: v.replace("\n1000\n", "\n999\n")),
        ("consistency_proof", lambda v: v[:-1]),
    ]:
        bundle_path.write_text(json.dumps({**bundle, field: tamper(bundle[field])}))
        assert audit().returncode != 0, f"tampered {field} was accepted"
