"""The academy: the course catalogue a CS team keeps, and one customer's learning path.

`playbooks/academy.toml` holds courses (made of modules, each with a target time frame),
the features of each plan, and segment wording for industries and use cases, each title and
wording optionally in other languages (`titles`, `tips`, `examples`, `outcomes`).
`AcademyFile.path_for(request)` picks what one customer sees: only the courses and features
their plan includes, narrowed to their industry and use case where a course says so. The
resolved `LearningPath` travels in the workflow input, like the playbook, so editing the
catalogue never changes a running onboarding's replay.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.playbook import Duration, PlaybookError, load_toml, localized

PlanName = Literal["basic", "premium", "enterprise"]
ALL_PLANS: list[PlanName] = ["basic", "premium", "enterprise"]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


def segment(value: str) -> str:
    """Industries and use cases are free text in deals: compare them case- and space-blind."""
    return " ".join(value.lower().split())


class ModulePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    title: str
    titles: dict[str, str] = Field(default={}, description="The title in other languages.")
    within: Duration = Field(description="Target: done this long after academy access.")


class CoursePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    title: str
    titles: dict[str, str] = Field(default={}, description="The title in other languages.")
    level: Literal["onboarding", "advanced"] = "onboarding"
    plans: list[PlanName] = Field(default=ALL_PLANS, min_length=1)
    industries: list[str] = Field(default=[], description="Empty: every industry.")
    use_cases: list[str] = Field(default=[], description="Empty: every use case.")
    modules: list[ModulePlan] = Field(min_length=1)

    def fits(self, plan: str, industry: str, use_case: str) -> bool:
        return (
            plan in self.plans
            and (not self.industries or segment(industry) in map(segment, self.industries))
            and (not self.use_cases or segment(use_case) in map(segment, self.use_cases))
        )


class FeaturePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    plans: list[PlanName] = Field(min_length=1)


class IndustryWording(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tip: str = Field(description="The welcome mail's tip, in words this industry uses.")
    tips: dict[str, str] = Field(default={}, description="The tip in other languages.")
    example: str = Field(description="How a team in this industry uses the product.")
    examples: dict[str, str] = Field(default={}, description="The example in other languages.")

    def localized(self, locale: str) -> IndustryWording:
        """The wording in `locale` where given, else the default; the other languages dropped,
        so what an onboarding carries is what it shows."""
        return IndustryWording(
            tip=self.tips.get(locale, self.tip), example=self.examples.get(locale, self.example)
        )


class UseCaseWording(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(description="What first value looks like for this use case.")
    outcomes: dict[str, str] = Field(default={}, description="The outcome in other languages.")

    def localized(self, locale: str) -> UseCaseWording:
        """As `IndustryWording.localized`."""
        return UseCaseWording(outcome=self.outcomes.get(locale, self.outcome))


class AcademyFile(BaseModel):
    """The shape of `playbooks/academy.toml`."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    courses: list[CoursePlan]
    features: list[FeaturePlan] = []
    industries: dict[str, IndustryWording] = {}
    use_cases: dict[str, UseCaseWording] = {}

    @model_validator(mode="after")
    def _unique_ids(self) -> AcademyFile:
        seen: set[str] = set()
        for course in self.courses:
            if course.id in seen:
                raise ValueError(f"courses: {course.id!r} appears twice")
            seen.add(course.id)
            modules = [m.id for m in course.modules]
            if len(set(modules)) != len(modules):
                raise ValueError(f"courses.{course.id}: module ids must be unique")
        return self

    def path_for(self, plan: str, industry: str, use_case: str, locale: str = "en") -> LearningPath:
        """The courses that fit the customer, titled in their language where given, and their
        segment's wording in that language where given (else the default wording)."""
        industries = {segment(k): v for k, v in self.industries.items()}
        use_cases = {segment(k): v for k, v in self.use_cases.items()}
        fitting = [c for c in self.courses if c.fits(plan, industry, use_case)]
        industry_wording = industries.get(segment(industry))
        use_case_wording = use_cases.get(segment(use_case))
        return LearningPath(
            courses=[
                localized(c, locale).model_copy(
                    update={"modules": [localized(m, locale) for m in c.modules]}
                )
                for c in fitting
            ],
            features=[f.name for f in self.features if plan in f.plans],
            industry=industry_wording.localized(locale) if industry_wording else None,
            use_case=use_case_wording.localized(locale) if use_case_wording else None,
        )


class LearningPath(BaseModel):
    """One customer's path through the academy, with the wording for their segment."""

    courses: list[CoursePlan] = []
    features: list[str] = Field(default=[], description="What the customer's plan includes.")
    industry: IndustryWording | None = None
    use_case: UseCaseWording | None = None

    def level(self, level: str) -> list[CoursePlan]:
        return [c for c in self.courses if c.level == level]

    def progress(
        self, started_at: datetime | None, done: dict[str, datetime], now: datetime
    ) -> list[CourseStatus]:
        """Every course with its modules, done or open, and due against the time frame
        counted from academy access (`started_at`; no due dates before access)."""
        courses = []
        for course in self.courses:
            modules = [
                ModuleStatus(
                    id=module.id,
                    title=module.title,
                    due_at=started_at + module.within if started_at else None,
                    done_at=done.get(f"{course.id}/{module.id}") or done.get(course.id),
                )
                for module in course.modules
            ]
            for module in modules:
                module.overdue = (
                    module.done_at is None and module.due_at is not None and now > module.due_at
                )
            finished = [m.done_at for m in modules]
            courses.append(
                CourseStatus(
                    id=course.id,
                    title=course.title,
                    level=course.level,
                    modules=modules,
                    done_at=max(finished) if all(finished) else None,  # type: ignore[type-var]
                )
            )
        return courses

    def unknown(self, progress_id: str) -> bool:
        """True when `course` or `course/module` names nothing on this path."""
        course_id, _, module_id = progress_id.partition("/")
        course = next((c for c in self.courses if c.id == course_id), None)
        return course is None or bool(module_id) and module_id not in {m.id for m in course.modules}


class ModuleStatus(BaseModel):
    id: str
    title: str
    due_at: datetime | None
    done_at: datetime | None = None
    overdue: bool = False


class CourseStatus(BaseModel):
    id: str
    title: str
    level: str
    modules: list[ModuleStatus]
    done_at: datetime | None = None


ACADEMY_FILE = "academy"


def load_academy(directory: Path) -> AcademyFile:
    return load_toml(directory / f"{ACADEMY_FILE}.toml", AcademyFile, PlaybookError)
