"""Clusters of cases that are not independent (one patient's several images): the unit of analysis.

With a suite's ``cluster = "Case"``, group comparisons (fairness, site drop) and the paired
baseline regression test are made between *patients*, not images: each patient's per-case values
are averaged within a group and analysis cell first, so every bootstrap resample and permutation
moves a patient with all its images, and ``n`` counts patients. (Descriptive CIs of a mean over
cases keep that mean and resample whole patients instead: ``robustness.bootstrap_mean_ci``.) A
case without a cluster value is its own cluster. Without ``cluster``, a patient column with
repeated values (:data:`harness.datasets.columns.PATIENT_COLUMNS`) earns a note that the analysis
treated the images as independent.

>>> import pandas as pd
>>> values = pd.DataFrame({"case_id": ["a", "b", "c"], "label": "mean", "perturbation": "clean",
...                        "severity": 0, "site": "X", "dice": [0.8, 0.6, 0.9]})
>>> cases = pd.DataFrame({"case_id": ["a", "b", "c"], "Case": ["p1", "p1", "p2"]})
>>> by_cluster(values, cluster_ids(cases, "Case"), groups=["site"], metrics=["dice"])["dice"].round(2).tolist()
[0.7, 0.9]
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.analysis.case_values import KEYS
from harness.analysis.cohorts import case_index
from harness.datasets.columns import PATIENT_COLUMNS, column, ids_of
from harness.errors import ConfigError

OWN = "case_id="  # prefix of the cluster id of a case without a cluster value ("Case=12" otherwise)


def cluster_ids(cases: pd.DataFrame, cluster: str) -> pd.Series:
    """``case_id -> cluster id`` (str) from the metadata column ``cluster``; a case whose value is
    missing is its own cluster. ConfigError (naming the suite key) when the column is absent or
    holds no value at all."""
    frame = case_index(cases)
    if cluster not in frame.columns:
        patients = column(frame, PATIENT_COLUMNS)
        hint = f" (a patient column here: {patients!r})" if patients else ""
        listed = f"columns: {', '.join(map(str, frame.columns))}" if len(frame.columns) else "the data has none"
        raise ConfigError(f"[suite].cluster {cluster!r} is not a metadata column{hint}; {listed}")
    text = ids_of(frame[cluster])
    missing = text.isna()
    if len(frame) and missing.all():
        raise ConfigError(f"[suite].cluster {cluster!r}: no case has a value in that column; fill it in the "
                          "metadata or remove the key")
    ids = f"{cluster}=" + text  # never an OWN id: case_id is the index, so no column is named so
    ids[missing] = OWN + frame.index[missing].astype(str)
    return ids.rename("_cluster")


def cluster_of(case_ids: pd.Series, clusters: pd.Series) -> pd.Series:
    """The cluster of each case id; a case absent from ``clusters`` is its own."""
    ids = case_ids.astype(str).map(clusters)
    return ids.where(ids.notna(), OWN + case_ids.astype(str))


def by_cluster(values: pd.DataFrame, clusters: pd.Series, *, groups: Sequence[str],
               metrics: Sequence[str]) -> pd.DataFrame:
    """``values`` (one row per case × cell, with the ``groups`` columns) averaged per cluster, group
    and cell; ``case_id`` becomes the cluster id. Cases absent from ``clusters`` are their own
    cluster. A metric missing for every case of a cluster stays missing (NaN), never imputed."""
    ids = cluster_of(values["case_id"], clusters)
    keys = ["_cluster", *KEYS[1:], *groups]
    frame = values.assign(_cluster=ids)
    out = frame.groupby(keys, sort=True, observed=True, dropna=False)[list(metrics)].mean().reset_index()
    return out.rename(columns={"_cluster": "case_id"})[[*KEYS, *groups, *metrics]]


def cluster_means(values: pd.Series, clusters: pd.Series) -> pd.Series:
    """Per-case values (indexed by case id) averaged per cluster: indexed by cluster id, sorted."""
    ids = cluster_of(values.index.to_series(), clusters)
    return values.groupby(ids.to_numpy(), sort=True).mean()


def clustering_note(values: pd.DataFrame, clusters: pd.Series, *, cluster: str, group: str) -> str:
    """What clustering did to the analysis of ``group``: "" when no cluster holds two cases."""
    first = values.drop_duplicates("case_id")
    clustered = pd.DataFrame({"cluster": cluster_of(first["case_id"], clusters).to_numpy(),
                              "group": first[group].to_numpy()})
    n_cases, n_clusters = len(clustered), clustered["cluster"].nunique()
    if n_clusters == n_cases:
        return ""
    note = (f"{group}: analysed by {cluster} ({n_cases} cases of {n_clusters} {cluster} values; each one's "
            f"cases averaged per group, so n counts {cluster} values)")
    spanning = int((clustered.groupby("cluster")["group"].nunique() > 1).sum())
    if spanning:
        note += (f"; {spanning} {cluster} value(s) have cases in more than one {group} group and count in each "
                 "(those groups are not independent)")
    return note


def unclustered_note(values: pd.DataFrame, cases: pd.DataFrame) -> str:
    """Without ``cluster``: a note when a patient column holds one value for several analysed
    cases (they were treated as independent); "" otherwise."""
    frame = case_index(cases)
    patients = column(frame, PATIENT_COLUMNS)
    if patients is None:
        return ""
    analysed = ids_of(frame[patients]).loc[frame.index.intersection(pd.Index(values["case_id"].unique()))].dropna()
    counts = analysed.value_counts()
    repeated = counts[counts > 1]
    if repeated.empty:
        return ""
    return (f"{int(repeated.sum())} of {len(analysed)} cases share a {patients} value with another case "
            f"({len(repeated)} {patients} values) and were treated as independent (if their results correlate, "
            f"the CIs are too narrow and the p-values too small); set [suite].cluster = \"{patients}\" to "
            f"analyse by {patients}")
