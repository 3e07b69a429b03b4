"""Reading Asterisk's documentation XML as Asterisk loads it: parse, resolve ``xi:include``, expand snapshots.

Asterisk (main/xml.c) runs libxml2's XInclude processing on each documentation file and then applies the
``appdocsxml.xslt`` stylesheet, whose templates turn ``<channel_snapshot prefix="Dest"/>`` and
``<bridge_snapshot/>`` into ``<parameter>`` elements. This module does the same with the standard library:
a small evaluator for the XPointer forms the files use, and an interpreter for the parameter-emitting
templates of the stylesheet (read from the stylesheet, so a new snapshot field needs no change here).
"""

from __future__ import annotations

import copy
import lzma
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogueError

XI_INCLUDE = "{http://www.w3.org/2001/XInclude}include"
XSL = "{http://www.w3.org/1999/XSL/Transform}"
STYLESHEET = "appdocsxml.xslt"
# The package's copy of the snapshot templates (22.10.1's, without their descriptions).
FALLBACK_STYLESHEET = Path(__file__).with_name("snapshots.xslt")

_Node = ET.Element | str  # an XPath result: an element or a text node


def read_xml(path: Path) -> ET.Element:
    """The root element of ``path`` (``.xml`` or ``.xml.xz``); CatalogueError when it cannot be read."""
    try:
        if path.name.endswith(".xz"):
            with lzma.open(path, "rb") as stream:
                data = stream.read()
        else:
            data = path.read_bytes()
        return ET.fromstring(data)
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    except ET.ParseError as exc:
        raise CatalogueError(f"invalid XML in {path}: {exc}") from exc


# --- XPointer: the subset the documentation uses ------------------------------------------------------

_XPOINTER = re.compile(r"^\s*xpointer\((?P<expr>.*)\)\s*$", re.S)
_STEP = re.compile(r"^(?P<test>[A-Za-z_][\w.-]*|\*|node\(\)|text\(\))(?P<preds>(?:\[[^\]]*\])*)$")
_PRED = re.compile(r"\[([^\]]*)\]")
_PRED_EQ = re.compile(r"""^\s*@(?P<attr>[\w-]+)\s*=\s*(?P<q>['"])(?P<value>.*?)(?P=q)\s*$""")
_PRED_CONTAINS = re.compile(r"""^\s*contains\(\s*@(?P<attr>[\w-]+)\s*,\s*(?P<q>['"])(?P<value>.*?)(?P=q)\s*\)\s*$""")
_PRED_INDEX = re.compile(r"^\s*(?P<index>\d+)\s*$")


@dataclass(frozen=True)
class _Step:
    test: str
    predicates: tuple[str, ...]


def parse_xpointer(xpointer: str) -> tuple[_Step, ...]:
    """The location steps of ``xpointer(/a/b[@name='x']/c[2]/node())``; CatalogueError for other forms.

    Supported: absolute or document-relative child paths, name tests, ``node()``, ``text()``, ``*`` and the
    predicates ``[@attr='v']``, ``[contains(@attr, 'v')]`` and ``[N]``.
    """
    match = _XPOINTER.match(xpointer)
    if match is None:
        raise CatalogueError(f"unsupported XPointer (not xpointer(...)): {xpointer!r}")
    # The context of an XPointer is the document node, so 'docs/x' and '/docs/x' select the same nodes.
    expr = match["expr"].strip().removeprefix("/")
    if not expr or "//" in expr:
        raise CatalogueError(f"unsupported XPointer path: {xpointer!r}")
    steps = []
    for part in expr.split("/"):
        step = _STEP.match(part.strip())
        if step is None:
            raise CatalogueError(f"unsupported XPointer step {part!r} in {xpointer!r}")
        predicates = tuple(_PRED.findall(step["preds"]))
        for predicate in predicates:
            if not (_PRED_EQ.match(predicate) or _PRED_CONTAINS.match(predicate) or _PRED_INDEX.match(predicate)):
                raise CatalogueError(f"unsupported XPointer predicate [{predicate}] in {xpointer!r}")
        steps.append(_Step(step["test"], predicates))
    return tuple(steps)


def _keep(node: _Node, predicate: str) -> bool:
    if isinstance(node, str):
        return False
    eq = _PRED_EQ.match(predicate)
    if eq is not None:
        return node.get(eq["attr"]) == eq["value"]
    contains = _PRED_CONTAINS.match(predicate)
    assert contains is not None  # parse_xpointer admitted only these three forms
    return contains["value"] in node.get(contains["attr"], "")


class IncludeResolver:
    """Replaces every ``xi:include`` of one document by copies of the nodes its XPointer selects.

    Includes are resolved on demand: before a path step looks at an element's children, the includes among
    them are resolved, so an XPointer that selects content which is itself included finds it (libxml2 gives
    the same result). A chain of includes that comes back to itself is an error.
    """

    def __init__(self, root: ET.Element, path: Path) -> None:
        self.root = root
        self.path = path
        self._active: set[int] = set()

    def resolve(self) -> None:
        stack = [self.root]
        while stack:
            node = stack.pop()
            stack.extend(self.children(node))

    def children(self, node: ET.Element) -> list[ET.Element]:
        """``node``'s child elements after resolving the includes among them."""
        while True:
            index = next((i for i, child in enumerate(node) if child.tag == XI_INCLUDE), None)
            if index is None:
                return list(node)
            self._splice(node, index)

    def select(self, xpointer: str) -> list[_Node]:
        """The nodes ``xpointer`` selects in the document (its includes resolved as the path goes)."""
        first, *rest = parse_xpointer(xpointer)
        # The context is the document node, whose only child is the root element.
        nodes = self._apply(first, [self.root] if first.test in ("*", "node()", self.root.tag) else [])
        for step in rest:
            nodes = self._step(step, [n for n in nodes if not isinstance(n, str)])
        return nodes

    def _step(self, step: _Step, context: list[ET.Element]) -> list[_Node]:
        selected: list[_Node] = []
        for node in context:
            selected.extend(self._apply(step, self._child_nodes(node, step.test)))
        return selected

    def _child_nodes(self, node: ET.Element, test: str) -> list[_Node]:
        elements = self.children(node)
        if test in ("node()", "text()"):
            nodes: list[_Node] = [node.text] if node.text else []
            for child in elements:
                nodes.append(child)
                if child.tail:
                    nodes.append(child.tail)
            return [n for n in nodes if isinstance(n, str)] if test == "text()" else nodes
        return [child for child in elements if test in ("*", child.tag)]

    def _apply(self, step: _Step, candidates: list[ET.Element] | list[_Node]) -> list[_Node]:
        """The candidates that pass the step's predicates, applied in order as XPath does."""
        nodes: list[_Node] = list(candidates)
        for predicate in step.predicates:
            index = _PRED_INDEX.match(predicate)
            if index is not None:
                position = int(index["index"])
                nodes = nodes[position - 1 : position] if position >= 1 else []
            else:
                nodes = [n for n in nodes if _keep(n, predicate)]
        return nodes

    def _splice(self, parent: ET.Element, index: int) -> None:
        include = parent[index]
        key = id(include)
        xpointer = include.get("xpointer")
        if include.get("href") or xpointer is None:
            raise CatalogueError(f"{self.path}: unsupported xi:include (only same-document xpointer): {include.attrib}")
        if key in self._active:
            raise CatalogueError(f"{self.path}: circular xi:include {xpointer!r}")
        self._active.add(key)
        try:
            found = self.select(xpointer)
        finally:
            self._active.discard(key)
        if not found:
            raise CatalogueError(f"{self.path}: xi:include {xpointer!r} selects nothing")
        if any(not isinstance(n, str) and any(d is include for d in n.iter()) for n in found):
            raise CatalogueError(f"{self.path}: circular xi:include {xpointer!r} (it selects itself)")
        items: list[_Node] = [n if isinstance(n, str) else copy.deepcopy(n) for n in found]
        for item in items:
            if not isinstance(item, str):
                item.tail = None
        del parent[index]
        _insert(parent, index, items, include.tail)


def _insert(parent: ET.Element, index: int, items: list[_Node], tail: str | None) -> None:
    """Put ``items`` (elements and text) where child ``index`` was, followed by the removed child's tail."""
    holder: ET.Element | None = parent[index - 1] if index > 0 else None  # whose text/tail receives strings

    def add_text(text: str | None) -> None:
        if not text:
            return
        if holder is None:
            parent.text = (parent.text or "") + text
        else:
            holder.tail = (holder.tail or "") + text

    for item in items:
        if isinstance(item, str):
            add_text(item)
        else:
            parent.insert(index, item)
            index += 1
            holder = item
    add_text(tail)


# --- Snapshot templates -------------------------------------------------------------------------------

_CONCAT_ARG = re.compile(r"""\s*(?:(?P<attr>@[\w-]+)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\s*(?:,|$)""")


@dataclass(frozen=True)
class Template:
    """One stylesheet template that turns an element (``channel_snapshot``) into parameter elements."""

    match: str
    outputs: tuple[ET.Element, ...]  # xsl:element / literal result elements, in order


def _value_of(select: str, source: ET.Element, where: str) -> str:
    """The value of the XPath expressions the snapshot templates use: concat() of @attr and literals."""
    select = select.strip()
    if select.startswith("concat(") and select.endswith(")"):
        inner, parts, pos = select[7:-1], [], 0
        while pos < len(inner):
            arg = _CONCAT_ARG.match(inner, pos)
            if arg is None or arg.end() == pos:
                raise CatalogueError(f"{where}: unsupported expression {select!r}")
            parts.append(_value_of(arg["attr"], source, where) if arg["attr"] else (arg["sq"] or arg["dq"] or ""))
            pos = arg.end()
        return "".join(parts)
    if select.startswith("@"):
        return source.get(select[1:], "")
    if len(select) >= 2 and select[0] == select[-1] and select[0] in "'\"":
        return select[1:-1]
    raise CatalogueError(f"{where}: unsupported expression {select!r}")


def _instantiate(node: ET.Element, source: ET.Element, where: str) -> list[_Node]:
    """What a template body node yields for ``source``: elements, text (attributes are handled by the caller)."""
    if node.tag == XSL + "element":
        name = node.get("name", "")
        if "{" in name:
            raise CatalogueError(f"{where}: unsupported computed element name {name!r}")
        element = ET.Element(name)
        _fill(element, node, source, where)
        return [element]
    if node.tag == XSL + "value-of":
        return [_value_of(node.get("select", ""), source, where)]
    if node.tag == XSL + "text":
        return [node.text or ""]
    if node.tag.startswith(XSL):
        raise CatalogueError(f"{where}: unsupported instruction <xsl:{node.tag[len(XSL) :]}> in a snapshot template")
    element = ET.Element(node.tag, {k: v for k, v in node.attrib.items()})
    _fill(element, node, source, where)
    return [element]


def _fill(element: ET.Element, body: ET.Element, source: ET.Element, where: str) -> None:
    items: list[_Node] = [body.text.strip()] if body.text and body.text.strip() else []
    for child in body:
        if child.tag == XSL + "attribute":
            value = "".join(n for c in child for n in _instantiate(c, source, where) if isinstance(n, str))
            element.set(child.get("name", ""), (child.text or "").strip() + value)
        else:
            items.extend(_instantiate(child, source, where))
        if child.tail and child.tail.strip():
            items.append(child.tail.strip())
    _insert(element, len(element), items, None)


def read_templates(path: Path) -> dict[str, Template]:
    """The ``*_snapshot`` templates of the stylesheet at ``path``, by the element name they match."""
    root = read_xml(path)
    templates: dict[str, Template] = {}
    for template in root.iter(XSL + "template"):
        match = template.get("match", "")
        if match.endswith("_snapshot"):
            templates[match] = Template(match, tuple(template))
    return templates


def expand_snapshots(root: ET.Element, templates: dict[str, Template], where: str) -> None:
    """Replace each ``<channel_snapshot prefix=..>``-like element by the parameters its template emits."""
    for parent in list(root.iter()):
        while True:
            index = next((i for i, child in enumerate(parent) if child.tag.endswith("_snapshot")), None)
            if index is None:
                break
            snapshot = parent[index]
            template = templates.get(snapshot.tag)
            if template is None:
                raise CatalogueError(f"{where}: no stylesheet template for <{snapshot.tag}>")
            items: list[_Node] = []
            for node in template.outputs:
                items.extend(_instantiate(node, snapshot, where))
            del parent[index]
            _insert(parent, index, [i for i in items if not isinstance(i, str)], snapshot.tail)


# --- Documents ----------------------------------------------------------------------------------------


def _stylesheet_for(path: Path, root_dir: Path) -> Path:
    """The stylesheet Asterisk would apply: beside the file, else beside the source directory, else ours."""
    for candidate in (path.parent / STYLESHEET, root_dir / STYLESHEET):
        if candidate.is_file():
            return candidate
    return FALLBACK_STYLESHEET


def load_document(path: Path, root_dir: Path | None = None) -> ET.Element:
    """One documentation file as Asterisk sees it: includes resolved, snapshots expanded."""
    root = read_xml(path)
    if root.tag != "docs":
        raise CatalogueError(f"{path}: not an Asterisk documentation file (root <{root.tag}>, expected <docs>)")
    IncludeResolver(root, path).resolve()
    stylesheet = _stylesheet_for(path, root_dir or path.parent)
    expand_snapshots(root, read_templates(stylesheet), f"{path} (stylesheet {stylesheet})")
    return root


def documentation_files(source: Path) -> list[Path]:
    """The files of ``source``: itself, or for a documentation/ directory its core and thirdparty XML.

    Asterisk's xmldoc.c loads every ``documentation/*-LANG.xml`` and ``documentation/thirdparty/*-LANG.xml``
    as separate documents (each with its own includes) and searches them all.
    """
    if source.is_dir():
        files = sorted(p for p in source.glob("core-*.xml*") if p.name.endswith((".xml", ".xml.xz")))
        files += sorted(p for p in (source / "thirdparty").glob("*.xml*") if p.name.endswith((".xml", ".xml.xz")))
        if not files:
            raise CatalogueError(f"{source}: no core-*.xml or thirdparty/*.xml documentation files")
        return files
    if not source.exists():
        raise CatalogueError(f"cannot read {source}: no such file or directory")
    return [source]


def load_documents(source: Path) -> Iterator[tuple[Path, ET.Element]]:
    root_dir = source if source.is_dir() else source.parent
    for path in documentation_files(source):
        yield path, load_document(path, root_dir)
