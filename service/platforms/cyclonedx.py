"""CycloneDX 1.6 and 1.7 BOMs as catalogues: each ``machine-learning-model`` component is
one hosting, read the way model hubs and AI-BOM tools write it.

- identity: the component's ``purl`` (``pkg:huggingface/owner/name@revision``,
  ``pkg:github/owner/repo@revision``, ``pkg:mlflow/...``): namespace and name are the
  model, the version its revision;
- URL: an external reference of type ``website`` or ``distribution``, else the hub's page
  for a ``huggingface`` or ``github`` purl;
- licence: the first of ``licenses`` (SPDX id in lower case, or its name, or expression);
- lineage: the first of ``pedigree.ancestors`` with a purl is the base model; the property
  ``registry:relation`` says how it derives (``fine_tune``, ``adapter``, ...);
- documentation: ``modelCard`` present means a model card (its URL from an external
  reference of type ``model-card``, if any); ``modelCard.considerations.useCases`` use
  guidance; ``considerations.ethicalConsiderations`` or ``fairnessAssessments`` a risk
  analysis; ``quantitativeAnalysis.performanceMetrics`` safety testing;
- the properties ``registry:external_id``, ``registry:downloads``, ``registry:gated`` and
  ``registry:platform`` carry the fields CycloneDX has no place for.

The BOM is validated against the official JSON schema of its ``specVersion`` first; one
that is not valid is refused (``InvalidInput``) naming the first fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
from packageurl import PackageURL

from service.errors import InvalidInput
from service.schemas.catalogue import CatalogueLine

__all__ = ["PROPERTY_PREFIX", "hostings", "model_of_purl"]

PROPERTY_PREFIX = "registry:"

_VERSIONS = ("1.6", "1.7")
_HUB_PAGES = {"huggingface": "https://huggingface.co/", "github": "https://github.com/"}


def model_of_purl(purl: str) -> tuple[str, str | None, str | None]:
    """``(model name, revision, hub page URL or None)`` of a package URL; ``ValueError``
    for one that is not a package URL or names no ``owner/name``."""
    parsed = PackageURL.from_string(purl)
    if not parsed.namespace:
        raise ValueError(f"{purl} names no owner (namespace)")
    namespace = parsed.namespace.split("/")[-1] if parsed.type == "mlflow" else parsed.namespace
    name = f"{namespace}/{parsed.name}"
    page = _HUB_PAGES.get(parsed.type)
    return name, parsed.version, None if page is None else page + name


def _validate(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the BOM is not JSON: {exc}", key="bom") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise InvalidInput("the body is not a CycloneDX BOM (bomFormat)", key="bom")
    version = str(document.get("specVersion"))
    if version not in _VERSIONS:
        raise InvalidInput(
            f"specVersion {document.get('specVersion')!r} is not accepted: 1.6 or 1.7",
            key="bom",
        )
    # Imported here: the schema machinery costs seconds of start-up that most
    # processes never need.
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    schema = SchemaVersion.from_version(version)
    fault = JsonStrictValidator(schema).validate_str(body.decode("utf-8"))
    if fault is not None:
        data: Any = fault.data
        where = getattr(data, "json_path", "$")
        message = getattr(data, "message", str(data))
        raise InvalidInput(
            f"the BOM is not valid CycloneDX {version}: {where}: {message}", key="bom"
        )
    return document


def _components(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every component in document order, nested ones after their parent."""
    stack = list(reversed(document.get("components", [])))
    while stack:
        component = stack.pop()
        yield component
        stack.extend(reversed(component.get("components", [])))


def _reference(component: dict[str, Any], *kinds: str) -> str | None:
    for kind in kinds:
        for ref in component.get("externalReferences", []):
            if ref.get("type") == kind and isinstance(ref.get("url"), str):
                return str(ref["url"])
    return None


def _licence(component: dict[str, Any]) -> str | None:
    for choice in component.get("licenses", []):
        if "expression" in choice:
            return str(choice["expression"])
        licence = choice.get("license", {})
        if "id" in licence:
            return str(licence["id"]).lower()
        if "name" in licence:
            return str(licence["name"])
    return None


def _line(component: dict[str, Any]) -> dict[str, Any]:
    """The catalogue line a model component stands for (validated by the caller)."""
    purl = component.get("purl")
    if not isinstance(purl, str):
        raise ValueError("a machine-learning-model component needs a purl")
    model, revision, page = model_of_purl(purl)
    line: dict[str, Any] = {"model": model}
    url = _reference(component, "website", "distribution") or page
    if url is None:
        raise ValueError(f"no URL for {purl}: add an externalReference of type website")
    line["url"] = url
    if revision is not None:
        line["revision"] = revision
    licence = _licence(component)
    if licence is not None:
        line["licence"] = licence
    for ancestor in component.get("pedigree", {}).get("ancestors", []):
        if isinstance(ancestor.get("purl"), str):
            line["base_model"] = model_of_purl(ancestor["purl"])[0]
            break
    props = {
        p["name"].removeprefix(PROPERTY_PREFIX): p.get("value")
        for p in component.get("properties", [])
        if str(p.get("name", "")).startswith(PROPERTY_PREFIX)
    }
    if "relation" in props and "base_model" in line:
        line["relation"] = props["relation"]
    for name in ("external_id", "platform"):
        if name in props:
            line[name] = props[name]
    if "downloads" in props:
        line["downloads"] = int(str(props["downloads"]))
    if "gated" in props:
        line["gated"] = str(props["gated"]).lower() == "true"
    card = component.get("modelCard")
    if card is not None:
        considerations = card.get("considerations", {})
        line["documentation"] = {
            "model_card": {"present": True, "url": _reference(component, "model-card")},
            "use_guidance": {"present": bool(considerations.get("useCases"))},
            "risk_analysis": {
                "present": bool(
                    considerations.get("ethicalConsiderations")
                    or considerations.get("fairnessAssessments")
                )
            },
            "safety_testing": {
                "present": bool(card.get("quantitativeAnalysis", {}).get("performanceMetrics"))
            },
        }
    return line


def hostings(body: bytes) -> Iterator[tuple[int, CatalogueLine | str, str | None]]:
    """Each model component of a valid BOM: its number (counted from 1 over all
    components), the hosting or why not, and the model it names if known."""
    document = _validate(body)
    for number, component in enumerate(_components(document), start=1):
        if component.get("type") != "machine-learning-model":
            continue
        try:
            raw = _line(component)
            yield number, msgspec.convert(raw, CatalogueLine), raw["model"]
        except (ValueError, msgspec.ValidationError) as exc:
            yield number, str(exc), None
