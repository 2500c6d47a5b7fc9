"""One rule's card each -> the few cards a clinician reads: ranked, at most three, advice merged.

Alert fatigue is what makes clinicians ignore decision support, so a response carries at most three
cards. Critical cards are never merged or dropped (there may be more than three only when every one
of them is critical). The rest is ranked (critical, warning, info, then the clinical priority of the
rule below) and what does not fit is merged into a card that stays:

- the companion advice (multidisciplinary consultation, survival estimate, expectations dialogue)
  always goes into a host card, because it is context for a decision rather than a separate task:
  survival and expectations into the first present of `HOSTS` (the treatment decision), the
  consultation advice into the most urgent of them (ties: the order of `HOSTS`), so that an "ad hoc
  MDT today" never sits in an info card behind a critical one;
- other non-critical advice past the third card goes into the card of the same patient problem
  (`PROBLEM`), else into the first card.

A merged rule becomes one short section of the host's detail, one entry in the host's
`extension.spinecds.merged` list (exactly what its own card carried in `extension.spinecds`), and
its suggestions, override reasons and links are appended to the host card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}
# Clinical priority of the rules when the indicator ties: the most time-critical decisions first.
RULE_PRIORITY = (
    "mescc-treatment",
    "mri-urgency",
    "sins-referral",
    "surgery-eligibility",
    "systemic-first",
    "mdt-consultation",
    "survival-estimate",
    "expectations-dialogue",
    "alarm-symptom-education",
)
COMPANIONS = ("mdt-consultation", "survival-estimate", "expectations-dialogue")
HOSTS = ("mescc-treatment", "surgery-eligibility", "mri-urgency", "sins-referral")
# Companion advice that follows the most urgent host rather than the treatment decision.
URGENCY_FOLLOWING = ("mdt-consultation",)
# The patient problem a rule's advice is about: cord compression and its imaging, stability of the
# spine and surgery, or the treatment plan as a whole.
PROBLEM = {
    "mescc-treatment": "cord",
    "mri-urgency": "cord",
    "alarm-symptom-education": "cord",
    "sins-referral": "stability",
    "surgery-eligibility": "stability",
    "systemic-first": "treatment",
    "mdt-consultation": "treatment",
    "survival-estimate": "treatment",
    "expectations-dialogue": "treatment",
}
MAX_CARDS = 3
ORDER_HOOKS = ("order-select", "order-sign")


@dataclass
class RuleCard:
    """One rule's complete card before ranking, with what ranking and feedback memory need."""

    card: dict[str, Any]
    about_order: bool = False  # decided for the draft order being selected or signed
    decisive: tuple[str, ...] = ()  # "Condition/c1@version" of the resources the card rests on
    merged: list[RuleCard] = field(default_factory=list)

    @property
    def rule_id(self) -> str:
        return str(self.card["extension"]["spinecds"]["ruleId"])

    @property
    def indicator(self) -> str:
        return str(self.card["indicator"])

    @property
    def critical(self) -> bool:
        return self.indicator == "critical"

    def identity(self) -> dict[str, Any]:
        """What must stay the same for feedback to keep applying: outcome (the tier included),
        indicator and the decisive resources with their versions."""
        spinecds = self.card["extension"]["spinecds"]
        return {
            "ruleId": self.rule_id,
            "outcome": spinecds.get("outcome"),
            "indicator": self.indicator,
            "decisive": sorted(self.decisive),
        }


def _priority(rule_id: str) -> tuple[int, str]:
    return (RULE_PRIORITY.index(rule_id), "") if rule_id in RULE_PRIORITY else (len(RULE_PRIORITY), rule_id)


def rank_key(item: RuleCard, hook: str) -> tuple[int, int, tuple[int, str]]:
    order_first = 0 if item.about_order and hook in ORDER_HOOKS else 1
    return (order_first, INDICATOR_RANK.get(item.indicator, 3), _priority(item.rule_id))


def arrange(items: list[RuleCard], hook: str) -> list[RuleCard]:
    """Rank, keep at most three (all critical ones), merge the rest; returns the kept cards in order."""
    ranked = sorted(items, key=lambda item: rank_key(item, hook))
    present = {item.rule_id: item for item in ranked}
    decision_host = next((present[rule] for rule in HOSTS if rule in present), None)
    # The consultation advice goes to the most urgent host card present (ties: the order of HOSTS),
    # so an urgent "ad hoc MDT today" never sits in an info card behind a critical one.
    urgent_host = min(
        (present[rule] for rule in HOSTS if rule in present),
        key=lambda item: INDICATOR_RANK.get(item.indicator, 3),
        default=None,
    )
    standing: list[RuleCard] = []
    for item in ranked:
        host = urgent_host if item.rule_id in URGENCY_FOLLOWING else decision_host
        if item.rule_id in COMPANIONS and not item.critical and host is not None and host is not item:
            host.merged.append(item)
        else:
            standing.append(item)
    critical = [item for item in standing if item.critical]
    room = max(0, MAX_CARDS - len(critical))
    others = [item for item in standing if not item.critical]
    kept_ids = {id(item) for item in critical + others[:room]}
    kept = [item for item in standing if id(item) in kept_ids]
    for item in others[room:]:
        _target(item, kept).merged.append(item)
    return kept


def _target(item: RuleCard, kept: list[RuleCard]) -> RuleCard:
    problem = PROBLEM.get(item.rule_id)
    same = [other for other in kept if problem is not None and PROBLEM.get(other.rule_id) == problem]
    return (same or kept)[0]


def flatten_merged(item: RuleCard) -> list[RuleCard]:
    """Every rule merged into `item`, a merged host's own merged rules included, in rank order."""
    out: list[RuleCard] = []
    for merged in item.merged:
        out.append(merged)
        out.extend(flatten_merged(merged))
    return out


def finish(item: RuleCard, hook: str) -> dict[str, Any]:
    """The host card with every merged rule folded in (the input cards are not modified)."""
    merged = sorted(flatten_merged(item), key=lambda other: rank_key(other, hook))
    card = dict(item.card)
    if not merged:
        return card
    card["extension"] = {"spinecds": {**card["extension"]["spinecds"], "merged": []}}
    sections = []
    suggestions = list(card.get("suggestions") or [])
    reasons = list(card.get("overrideReasons") or [])
    links = list(card.get("links") or [])
    for other in merged:
        own = other.card
        card["extension"]["spinecds"]["merged"].append(own["extension"]["spinecds"])
        sections.append(merged_section(own, (card.get("source") or {}).get("label", "")))
        suggestions.extend(own.get("suggestions") or [])
        for reason in own.get("overrideReasons") or []:
            if all(reason.get("code") != kept.get("code") for kept in reasons):
                reasons.append(reason)
        for link in own.get("links") or []:
            if all(link.get("url") != kept.get("url") for kept in links):
                links.append(link)
    card["detail"] = "\n\n".join([card.get("detail", "").rstrip(), *sections]).strip()
    if suggestions:
        if len(suggestions) > len(card.get("suggestions") or []) and card.get("suggestions"):
            # Suggestions of different rules are not alternatives to each other: any may be taken.
            card["selectionBehavior"] = "any"
        card["suggestions"] = suggestions
        card.setdefault("selectionBehavior", "any")
    if reasons:
        card["overrideReasons"] = reasons
    if links:
        card["links"] = links
    return card


def merged_section(card: dict[str, Any], host_source: str = "") -> str:
    """A merged card as one short section: its summary as the heading, then its decisive finding and
    bullets (the first blocks of its detail up to and including the first list), then its source
    (only its section when it cites the same guideline as the host card)."""
    blocks = [block for block in card.get("detail", "").split("\n\n") if block.strip()]
    kept: list[str] = []
    for block in blocks:
        kept.append(block.strip())
        if _is_list(block) or len(kept) == 2:
            break
    source = (card.get("source") or {}).get("label")
    guideline, _, section = (source or "").partition(" - ")
    if section and host_source.partition(" - ")[0] == guideline:
        source = section
    lines = [f"**Also: {card['summary']}**", *kept]
    if source:
        lines.append(f"*Source: {source}*")
    return "\n\n".join(lines)


def _is_list(block: str) -> bool:
    first = block.strip().splitlines()[0].lstrip()
    return first.startswith(("- ", "* ", "+ ", "| "))
