"""Model graders: a second model (or the evaluated one) that reads or grades outputs the rules
cannot. One interface (base: Grader, Case, Verdict) for the diagnosis judge and its lexical fallback
(judge), the HealthBench rubric grader (rubric) and the extraction judge (extract_judge), over their
shared chat client (chat); the per-run set of graders a task list needs (registry); and the model's
own answer (self_answer: log-probabilities from the evaluated backend, asked by the runner before
scoring, so not a Grader)."""
