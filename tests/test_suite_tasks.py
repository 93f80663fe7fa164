"""The clinical NLP suite: every task file loads, renders real items, extracts real output styles,
and runs end to end on the embedded model; credentialed tasks explain how to get their data."""
import json

import pytest

from medeval.tasks.answer_types import extract, read
from medeval.tasks.data import load_items
from medeval.errors import MedevalError
from medeval.tasks.prompts import Renderer
from medeval.runs.runner import RunConfig, run
from medeval.tasks.spec import Registry, _resolve_base, package_dir, read_yaml

from conftest import DATA

PUBLIC = ["ddi", "hoc", "mtsamples", "ncbi_disease", "bc5cdr", "pubmed_summ", "iu_xray", "nli4ct",
          "mediqa_rqe", "covidqa", "cupcase"]
PRIVATE = ["mednli", "i2b2", "mimic_cxr", "emrqa", "nejm_cpc"]   # credentialed / user-supplied
SUITE = PUBLIC + PRIVATE + ["bionli"]


@pytest.fixture(scope="module")
def reg():
    return Registry()


# -- task files --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SUITE)
def test_task_file_is_complete(reg, name):
    t = reg.tasks[name]
    assert t.version == 1 and t.display_name and len(t.description) > 40
    raw = _resolve_base(package_dir("tasks") / f"{name}.yaml", read_yaml(package_dir("tasks") / f"{name}.yaml"))
    assert "max_tokens" in raw["generation"] and "stop" in raw["generation"], "set decoding per task"
    assert all(isinstance(l, str) for l in t.answer.labels)          # YAML yes/no/true/false quoted
    assert all(a in t.answer.labels for a in t.answer.aliases), "aliases for labels the task does not have"
    if t.dataset.access != "public" or not t.dataset.local or name == "bionli":
        assert t.dataset.how_to_get and t.dataset.fields


def test_groups(reg):
    assert [t.name for t in reg.resolve(["clinical_public"])] == PUBLIC
    assert len(reg.resolve(["me_llama"])) == len(reg.resolve(["me_llama_public"])) + 1 == 12


@pytest.mark.parametrize("name", PUBLIC)
def test_public_task_renders_its_first_items(reg, name):
    t = reg.tasks[name]
    items = load_items(t, DATA, limit=3)
    renderer = Renderer(t)
    for row, item_id in zip(items.rows, items.ids):
        (role, text), = renderer.messages(row, item_id)
        assert role == "user" and "{{" not in text and "{%" not in text
        read(t, row)[0]   # the gold answer is in the label set / well formed
        if name in ("covidqa", "pubmed_summ"):   # a 12,000-character window of the document
            body = row["context" if name == "covidqa" else "article"]
            if len(body) > 12_000:
                assert len(text) < 12_600 and " [...]" in text and body[:2000] in text and body[-500:] not in text
            else:
                assert body in text and "[...]" not in text
        if name == "covidqa":
            assert text.endswith(f"Question: {row['question']}\nAnswer:")
        if name == "mtsamples":
            assert row["description"] in text and len(text) < 4_000 + 1_000
        if name in ("ncbi_disease", "bc5cdr"):
            assert " ".join(row["tokens"]) in text


# -- extraction on output styles models write ---------------------------------------------------
LABEL_CASES = {
    "ddi": [("mechanism", "mechanism"), ("Answer: int", "int"), ("Interaction.", "int"),
            ("The answer is advise.", "advise"), ("False", "false"), ("No interaction", "false"),
            ("\\boxed{effect}", "effect"), ("effect or mechanism", None), ("Advice: avoid together", "advise")],
    "mtsamples": [("Cardiology", "Cardiovascular / Pulmonary"), ("Obstetrics/Gynecology", "Obstetrics / Gynecology"),
                  ("ENT - Otolaryngology", "ENT - Otolaryngology"), ("Neurosurgery", "Neurosurgery"),
                  ("Orthopaedics.", "Orthopedic"), ("**Hematology/Oncology**", "Hematology - Oncology"),
                  ("Dermatology", None)],
    "mednli": [("Entailment", "entailment"), ("neutral.", "neutral"), ("The premise contradicts the hypothesis.",
               "contradiction"), ("\\boxed{neutral}", "neutral"), ("entailment or contradiction", None)],
    "nli4ct": [("Contradiction", "contradiction"), ("Answer: entailment", "entailment"), ("The statement is entailed.",
               "entailment"), ("The statement is not entailed.", None)],
    "bionli": [("entailment", "entailment"), ("contradiction", "contradiction")],
    "mediqa_rqe": [("True", "true"), ("false", "false"), ("Yes", "true"), ("No, A does not entail B.", "false"),
                   ("\\boxed{true}", "true")],
}


@pytest.mark.parametrize("name,text,want", [(n, t, w) for n, cases in LABEL_CASES.items() for t, w in cases])
def test_label_extraction(reg, name, text, want):
    assert extract(reg.tasks[name], text) == want


@pytest.mark.parametrize("text,want", [
    ("sustaining proliferative signaling; resisting cell death", ["resisting cell death", "sustaining proliferative signaling"]),
    ("None", []), ("none of the hallmarks apply", []),
    ("Genome instability and mutation, inducing angiogenesis", ["genomic instability and mutation", "inducing angiogenesis"]),
    ("Tumour-promoting inflammation", ["tumor promoting inflammation"]),
    ("avoiding immune destruction; not inducing angiogenesis", ["avoiding immune destruction"]),
    ("I am not sure.", None),
])
def test_hoc_extraction(reg, text, want):
    assert extract(reg.tasks["hoc"], text) == want


def test_ner_extraction_on_real_sentences(reg):
    t = reg.tasks["ncbi_disease"]
    row = load_items(t, DATA, limit=1).rows[0]   # "... ataxia - telangiectasia gene in a sporadic T - cell leukaemia ."
    lines = '{"text": "ataxia-telangiectasia", "type": "Disease"}\n{"text": "sporadic T-cell leukaemia", "type": "disease"}'
    assert extract(t, lines, row) == read(t, row)[0]
    fenced = 'Here are the entities:\n\n```json\n[{"text": "ataxia - telangiectasia", "type": "Disease"}]\n```'
    assert extract(t, fenced, row) == [[6, 9, "Disease"]]
    assert extract(t, "None", row) == [] and extract(t, "I found some diseases.", row) is None
    t = reg.tasks["bc5cdr"]
    row = load_items(t, DATA, limit=1).rows[0]
    out = '{"text": "dobutamine", "type": "Chemical"}\n{"text": "dilated cardiomyopathy", "type": "Disease"}'
    assert extract(t, out, row) == [[9, 10, "Chemical"], [15, 17, "Disease"]]
    assert extract(t, '{"text": "dobutamine", "type": "Drug"}', row) == []   # not a task type
    t, row = reg.tasks["i2b2"], SYNTHETIC["i2b2/test.jsonl"][1]   # the documented schema aligns
    assert extract(t, '{"text": "chest x-ray", "type": "TEST"}', row) == read(t, row)[0] == [[3, 7, "test"]]


@pytest.mark.parametrize("text", [
    "mother-to-child transmission", "Answer: mother-to-child transmission",
    "The answer is mother-to-child transmission", '"mother-to-child transmission"',
    "The answer is: mother-to-child transmission", "Final answer: mother-to-child transmission",
])
def test_span_extraction(reg, text):
    assert extract(reg.tasks["covidqa"], text) == "mother-to-child transmission"


def test_span_and_diagnosis_extraction(reg):
    assert extract(reg.tasks["covidqa"], "   ") is None
    out = "Differential diagnosis:\n1. **Sarcoidosis** - most likely\n2. Tuberculosis\n3) Lymphoma: less likely"
    assert extract(reg.tasks["cupcase"], out) == ["Sarcoidosis", "Tuberculosis", "Lymphoma"]
    assert extract(reg.tasks["nejm_cpc"], "<think>long reasoning") is None


# -- the whole public suite, end to end ----------------------------------------------------------
def test_public_suite_runs_end_to_end(reg, hf_backend, tmp_path):
    """One run call over the clinical_public group, as a user would run it (judge: lexical fallback).
    One item per task: covidqa and pubmed_summ prompts are ~3,000 tokens, slow to prefill on a CPU."""
    out = tmp_path / "run"
    res = run(RunConfig(tasks=["clinical_public"], limit=1, max_tokens=32, data_dir=str(DATA),
                        output_dir=str(out), no_cache=True), backend=hf_backend, progress=False)
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk["tasks"]) == set(PUBLIC) and "clinical_public" in on_disk["groups"]
    for name, r in on_disk["tasks"].items():
        assert r["n"] == 1 and list(r["metrics"]["greedy"]) == reg.tasks[name].metrics
        for metric, m in r["metrics"]["greedy"].items():
            assert 0.0 <= m["value"] <= 1.0, (name, metric, m)
        rows = [json.loads(l) for l in (out / r["samples_file"]).open()]
        assert len(rows) == 1 and rows[0]["prompt"] and rows[0]["greedy"]["outputs"][0] is not None
        assert r["metrics"] == json.loads(json.dumps(res["tasks"][name]["metrics"]))   # what run() returned
    cup = [json.loads(l) for l in (out / "samples_cupcase.jsonl").open()]
    assert all(s["greedy"]["judge"]["judge"] == "lexical-fallback" for s in cup)


# -- credentialed and user-supplied data ----------------------------------------------------------
SYNTHETIC = {   # invented text, clearly marked: never real clinical data
    "mednli/test.jsonl": [
        {"pairID": "syn-1", "sentence1": "SYNTHETIC NOTE: the patient reports a headache since this morning.",
         "sentence2": "The patient has a headache.", "gold_label": "entailment"},
        {"pairID": "syn-2", "sentence1": "SYNTHETIC NOTE: no fever was recorded during the stay.",
         "sentence2": "The patient was febrile.", "gold_label": "contradiction"}],
    "i2b2/test.jsonl": [
        {"id": "syn-1", "tokens": "SYNTHETIC : aspirin was given for the headache .".split(),
         "entities": [{"type": "treatment", "start": 2, "end": 3, "text": "aspirin"},
                      {"type": "problem", "start": 6, "end": 8, "text": "the headache"}]},
        {"id": "syn-2", "tokens": "SYNTHETIC : a chest x - ray was normal .".split(),
         "entities": [{"type": "test", "start": 3, "end": 7, "text": "chest x - ray"}]}],
    "mimic_cxr/test.jsonl": [
        {"study_id": "syn-1", "findings": "SYNTHETIC: lungs are clear. heart size normal.",
         "impression": "No acute disease."},
        {"study_id": "syn-2", "findings": "SYNTHETIC: small left effusion.", "impression": "Small left effusion."}],
    "emrqa/test.jsonl": [
        {"id": "syn-1", "context": "SYNTHETIC NOTE. Medications: invented-drug 10 mg daily.",
         "question": "What dose of invented-drug?", "answers": {"text": ["10 mg daily"]}},
        {"id": "syn-2", "context": "SYNTHETIC NOTE. Allergies: none known.", "question": "Any allergies?",
         "answers": {"text": ["none known"]}}],
    "nejm_cpc/test.jsonl": [
        {"id": "syn-1", "case": "SYNTHETIC CASE: a 30-year-old with cough and night sweats for a month.",
         "final_diagnosis": "Tuberculosis"},
        {"id": "syn-2", "case": "SYNTHETIC CASE: a child with fever for six days and red lips.",
         "final_diagnosis": "Kawasaki disease"}],
    "bionli/test.jsonl": [
        {"premise": "SYNTHETIC: protein X binds receptor Y in cultured cells.",
         "hypothesis": "Protein X binds receptor Y.", "label": "entailment"},
        {"premise": "SYNTHETIC: blocking Y had no effect on growth.",
         "hypothesis": "Blocking Y stops growth.", "label": "contradiction"}],
}


@pytest.mark.parametrize("name", PRIVATE)
def test_missing_credentialed_data_explains_how_to_get_it(reg, name, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDEVAL_DATA_DIR", raising=False)
    t = reg.tasks[name]
    for data_dir in (str(tmp_path), None):
        with pytest.raises(MedevalError) as err:
            run(RunConfig(tasks=[name], data_dir=data_dir, output_dir=str(tmp_path / "o"), no_cache=True),
                backend=object(), progress=False)   # fails before the backend is touched
        msg = str(err.value)
        assert " ".join(t.dataset.how_to_get.split()) in msg
        assert ", ".join(t.dataset.fields) in msg and t.dataset.local in msg
        assert ("physionet" in msg.lower()) == (name in ("mednli", "mimic_cxr"))


def test_hub_only_bionli_without_hub_explains(reg, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDEVAL_DATA_DIR", raising=False)
    with pytest.raises(MedevalError, match="StonyBrookNLP/BioNLI") as err:
        load_items(reg.tasks["bionli"], tmp_path)
    assert "premise, hypothesis, label" in str(err.value)


def test_private_tasks_run_on_synthetic_local_files(hf_backend, tmp_path):
    for rel, rows in SYNTHETIC.items():
        path = tmp_path / "data" / rel
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = run(RunConfig(tasks=PRIVATE + ["bionli"], max_tokens=24, data_dir=str(tmp_path / "data"),
                        output_dir=str(tmp_path / "o"), no_cache=True), backend=hf_backend, progress=False)
    for name in PRIVATE + ["bionli"]:
        r = res["tasks"][name]
        assert r["n"] == 2 and r["dataset"]["source"].startswith("local:")
        assert all(0 <= m["value"] <= 1 for m in r["metrics"]["greedy"].values())
    assert res["tasks"]["i2b2"]["metric_options"]["entity_macro_f1"] == {"types": ["problem", "test", "treatment"]}
