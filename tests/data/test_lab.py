from sftmix_ray.data import lab
from sftmix_ray.data.formats import to_messages
from sftmix_ray.data.template import VicunaTemplate
from sftmix_ray.evaluate.code import score_code
from sftmix_ray.evaluate.math import reference_answer


def test_lab_is_deterministic_and_eval_is_held_out():
    for d in lab.LAB_DOMAINS:
        assert lab.lab_train(d, 50, seed=3) == lab.lab_train(d, 50, seed=3)
    train_q = {r["question"] for r in lab.lab_train("math", 2000)}
    assert not train_q & {r["question"] for r in lab.lab_eval("math", 100)}
    train_code = {r["input"] for r in lab.lab_train("code", 2000)}
    assert not train_code & {p["prompt"] for p in lab.lab_eval("code", 40)}


def test_lab_formats_are_the_real_ones():
    m = lab.lab_train("math", 1)[0]
    assert reference_answer(m["answer"]).lstrip("-").isdigit()
    assert set(lab.lab_train("code", 1)[0]) == {"instruction", "input", "output"}
    assert lab.lab_train("general", 1)[0]["conversations"][0]["from"] == "human"
    for d, fmt in (("math", "gsm8k"), ("code", "alpaca"), ("general", "sharegpt")):
        msgs = to_messages(lab.lab_train(d, 1)[0], fmt)
        assert msgs[-1]["role"] == "assistant"


def test_lab_code_canonical_solutions_pass_the_real_executor():
    problems = lab.lab_eval("code", 30)
    scores, _ = score_code([[p["canonical_solution"]] for p in problems], problems)
    assert scores["code"] == 1.0


def test_template_masks_prompts():
    segs = VicunaTemplate().segments([{"role": "user", "content": "hi"},
                                      {"role": "assistant", "content": "yo"}])
    assert segs == [("USER: hi\nASSISTANT:", False), (" yo</s>", True)]
