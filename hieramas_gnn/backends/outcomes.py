"""Summary of a tidy outcome table (`question_id, model, answer, correct`): per-model accuracy,
the plurality vote of all models and the oracle, over the questions every model answered.

Plurality vote, per question: answers are grouped by `answer_num` when the table has it and it
is set (so `18` and `18.0` are one answer), else by the answer text stripped; empty answers do
not vote. The answer with the most votes wins; a tie goes to the tied answer given by the most
accurate model (overall accuracy in the file), and if that model gave several, the
lexicographically smallest. The vote is right when the models that gave the winning answer were
graded right (a majority of them, should they disagree). A question where no model gave an
answer counts as wrong. Used by `hieramas outcomes inspect` and the replay experiments.
"""

from __future__ import annotations


def _vote_key(df):
    if "answer_num" in df:
        num = df["answer_num"].astype(str).str.strip()
        return num.where(num != "", df["answer"].str.strip())
    return df["answer"].str.strip()


def summarize(df) -> dict:
    """Per-model accuracy, plurality vote and oracle over the common questions."""
    n_models = df["model"].nunique()
    per_q = df.groupby("question_id")["model"].nunique()
    common = set(per_q[per_q == n_models].index)
    d = df[df["question_id"].isin(common)].copy()
    acc = d.groupby("model")["correct"].mean().sort_values(ascending=False)
    rank = {m: i for i, m in enumerate(acc.index)}  # 0 = most accurate
    d["key"] = _vote_key(d)
    d["rank"] = d["model"].map(rank)
    voted = d[d["key"] != ""]
    g = voted.groupby(["question_id", "key"]).agg(votes=("model", "size"), best=("rank", "min"),
                                                  right=("correct", "mean")).reset_index()
    g = g.sort_values(["question_id", "votes", "best", "key"], ascending=[True, False, True, True])
    top = g.drop_duplicates("question_id")
    second = g[g.duplicated("question_id")].drop_duplicates("question_id").set_index("question_id")["votes"]
    ties = int((top.set_index("question_id")["votes"] == second.reindex(top["question_id"]).values).sum())
    plurality_right = int((top["right"] > 0.5).sum())
    oracle = d.groupby("question_id")["correct"].max()
    return {
        "n_questions": len(common), "n_models": int(n_models),
        "n_rows_dropped": int(len(df) - len(d)),
        "models": [{"model": m, "n": int((d["model"] == m).sum()), "accuracy": float(a)} for m, a in acc.items()],
        "plurality": {"accuracy": plurality_right / max(len(common), 1), "ties": ties,
                      "tie_rule": "most accurate model's answer, then lexicographic"},
        "oracle": {"accuracy": float(oracle.mean()) if len(oracle) else 0.0},
    }
