"""Chinese and English names for the things a coordinator reads in explanations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A phrase in Chinese (first) and English."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en

SKILLS: dict[str, Text] = {
    "party": Text("党员", "Party member"),
    "medical": Text("医护", "medical staff"),
    "driver": Text("驾驶员", "driver"),
    "security": Text("安保", "security staff"),
    "counsellor": Text("心理咨询员", "counsellor"),
    "counselor": Text("心理咨询员", "counsellor"),
    "senior": Text("老年志愿者", "senior volunteer"),
    "teacher": Text("教师", "teacher"),
}


def missing_en(n: int, skill: str | None) -> str:
    """ "1 person missing", "2 medical staff missing"."""
    if skill is None:
        return f"{n} {'person' if n == 1 else 'people'} missing"
    return f"{n} {skill_label(skill).en} missing"


def skill_label(skill: str | None) -> Text:
    """How to name the people a requirement is missing ("1 名医护", "1 medical staff")."""
    if skill is None:
        return Text("人员", "people")
    return SKILLS.get(skill, Text(f"具备“{skill}”技能的人员", f"people with skill {skill!r}"))
