"""Model graders: a second model (or the evaluated one) that reads or grades outputs the rules
cannot: the diagnosis judge (judge), the HealthBench rubric grader (rubric), the extraction judge
(extract_judge), the model's own answer (self_answer), their shared chat client (chat) and the
per-run set of graders a task list needs (registry)."""
