"""The plans creditsim's bundled scenarios come from, so that a target's source reads as a document, not a file.

A target's ``source`` names the file of the policy document and the clause (``004_a4906bae605cc669.txt 一(三)``,
the way ../shared/seeds/README.md asks them to be cited). :func:`cite` turns the file into the plan's title, its
issuing body and year as the document itself gives them, and keeps the clause: ``嘉兴市小微企业三年成长计划
(2021—2023年) · 嘉兴市人民政府办公室, 2021 · 一(三)``. A source naming no known file is returned as written.
"""

from __future__ import annotations

__all__ = ["PLANS", "cite", "cited_plans"]

#: The five policy documents by file: title, issuing body (and document number) and year, as the texts state them.
PLANS: dict[str, tuple[str, str, str]] = {
    "003_bb91904e8da33d94.txt": ("浙江省“小微企业三年成长计划”(2018—2020年)", "浙江省人民政府办公厅, 浙政办发〔2018〕34号", "2018"),
    "000_e8c595c90316b646.txt": ("杭州市小微企业三年成长计划(2018-2020年)", "杭州市人民政府办公厅, 杭政办函〔2018〕139号", "2018"),
    "001_0cf715f395031a36.txt": ("浙江省“雏鹰行动”实施意见", "经浙江省人民政府同意印发", "targets to 2022"),
    "004_a4906bae605cc669.txt": ("嘉兴市小微企业三年成长计划(2021—2023年)", "嘉兴市人民政府办公室", "2021"),
    "002_0287a35361123785.txt": ("温州市创建中小微企业友好城市实施意见", "温州市人民政府", "2023-10-12"),
}


def cite(source: str) -> str:
    """A target's source with its document's file replaced by the plan's title, issuer and year (see the module)."""
    for file, (title, issuer, year) in PLANS.items():
        if file in source:
            clause = source.replace(file, "").strip(" ,;·")
            return " · ".join(part for part in (title, f"{issuer}, {year}", clause) if part)
    return source


def cited_plans(sources: list[str]) -> list[str]:
    """The plans a list of targets' sources cite, once each with the clauses cited (in order), as lines for people:
    ``嘉兴市小微企业三年成长计划(2021—2023年) · 嘉兴市人民政府办公室, 2021 · 一(三), 二(三)9``; a source naming no
    known document is its own line."""
    clauses: dict[str, list[str]] = {}
    for source in sources:
        if not source:
            continue
        file = next((f for f in PLANS if f in source), None)
        if file is None:
            clauses.setdefault(source, [])
            continue
        title, issuer, year = PLANS[file]
        clause = source.replace(file, "").strip(" ,;·")
        found = clauses.setdefault(f"{title} · {issuer}, {year}", [])
        if clause and clause not in found:
            found.append(clause)
    return [f"{plan} · {', '.join(items)}" if items else plan for plan, items in clauses.items()]
