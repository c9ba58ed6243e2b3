"""moto's Secrets Manager at AWS's cost per call, for the local stack's server.

moto finds a secret by scanning every secret of the region, name and ARN, on each lookup, and
ListSecrets turns every matching secret into its listing entry before cutting the page. With
ten thousand tenants' secrets a CreateSecret, a BatchGetSecretValue or a ListSecrets page costs
in proportion to the whole store, where AWS's cost is per secret asked for or per page. These
two replacements answer exactly what moto answers, at the cost per call AWS has:

- the store keeps an index of each secret's name and ARN to its key (a replica is kept under
  its ARN); an index entry is trusted only after the secret it points at is checked, and a
  secret removed behind the store's back (moto pops replicas with `dict.pop`) sends the lookup
  to moto's own scan;
- ListSecrets filtered by name (a prefix match) looks at the secrets whose names start so, found
  in the store's sorted names, in the store's order; moto's own filters decide any filter beside
  that one, and it builds the entries of the page it returns only.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from typing import Any

from moto.secretsmanager import models
from moto.secretsmanager.utils import get_secret_name_from_partial_arn

Secret = models.FakeSecret | models.ReplicaSecret


class IndexedSecretsStore(models.SecretsStore):
    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, str] = {}  # a stored secret's name and ARN -> its key
        self._names: list[tuple[str, str]] = []  # (name, key) of every secret stored, sorted
        self._place: dict[str, int] = {}  # key -> when it entered the dict: its place in order
        self._clock = itertools.count()

    def _holds(self, key: str, identifier: str) -> bool:
        secret = dict.get(self, key)
        return secret is not None and identifier in (secret.arn, secret.name)

    def _key(self, identifier: str) -> str | None:
        """The key of the first stored secret named `identifier` or with that ARN, as moto's scan
        finds it; None when there is none."""
        key = self._keys.get(identifier)
        if key is None:
            return None  # every secret is stored through __setitem__, so never stored
        if self._holds(key, identifier):
            return key
        found = next((k for k in dict.keys(self) if self._holds(k, identifier)), None)
        if found is None:
            del self._keys[identifier]
        else:
            self._keys[identifier] = found
        return found

    def __setitem__(self, key: str, value: Secret) -> None:
        if not dict.__contains__(self, key):  # a new key goes last; a replaced one keeps its place
            self._place[key] = next(self._clock)
        super().__setitem__(key, value)
        for identifier in (value.name, value.arn):
            if self._key(identifier) is None:  # the first stored wins, as in moto's scan
                self._keys[identifier] = key
        entry = (value.name, key)
        at = bisect.bisect_left(self._names, entry)
        if self._names[at : at + 1] != [entry]:
            self._names.insert(at, entry)

    def named(self, prefixes: Iterable[str]) -> list[Secret]:
        """The stored secrets whose names start with one of `prefixes`, in the store's order."""
        keys = set()
        for prefix in prefixes:
            at = bisect.bisect_left(self._names, (prefix, ""))
            while at < len(self._names) and self._names[at][0].startswith(prefix):
                name, key = self._names[at]
                secret = dict.get(self, key)
                if secret is not None and secret.name == name:  # not popped since
                    keys.add(key)
                at += 1
        return [dict.__getitem__(self, key) for key in sorted(keys, key=self._place.__getitem__)]

    def __getitem__(self, key: str) -> Secret:
        found = self._key(key)
        return dict.__getitem__(self, found if found is not None else get_secret_name_from_partial_arn(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._key(key) is not None or dict.__contains__(self, get_secret_name_from_partial_arn(key))

    def get(self, key: str) -> Secret | None:  # type: ignore[override]
        found = self._key(key)
        return dict.get(self, found if found is not None else get_secret_name_from_partial_arn(key))

    def pop(self, key: str) -> Secret | None:  # type: ignore[override]
        found = self._key(key)
        if found is not None:
            key = dict.__getitem__(self, found).name  # moto pops by the found secret's name
        return dict.pop(self, get_secret_name_from_partial_arn(key), None)


def name_prefixes(filters: list[dict[str, Any]]) -> list[str] | None:
    """The prefixes every listed secret's name starts with one of, when the filters say so: a
    name filter without negations (filters are all to hold; a name value matches as a prefix)."""
    for f in filters:
        if f["Key"] == "name" and not any(value.startswith("!") for value in f["Values"]):
            return list(f["Values"])
    return None


def list_secrets(
    self: models.SecretsManagerBackend,
    filters: list[dict[str, Any]],
    max_results: int = models.MAX_RESULTS_DEFAULT,
    next_token: str | None = None,
    include_planned_deletion: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    prefixes = name_prefixes(filters)
    store = self.secrets
    candidates: Iterable[Secret]
    if prefixes is not None and isinstance(store, IndexedSecretsStore):
        # A lone name filter is what named() matched already; any other still goes through moto's.
        candidates, decided = store.named(prefixes), len(filters) == 1
    else:
        candidates, decided = store.values(), False
    listed = [
        secret
        for secret in candidates
        if (include_planned_deletion or not getattr(secret, "deleted_date", None))
        and (decided or models._matches(secret, filters))
    ]
    page, token = self._get_secret_values_page_and_next_token(listed, max_results, next_token)  # type: ignore[arg-type]
    return [secret.to_dict() for secret in page], token  # type: ignore[attr-defined]


def install() -> None:
    """Backends made after this (moto makes them on first use) get both."""
    models.SecretsStore = IndexedSecretsStore  # type: ignore[assignment,misc]
    models.SecretsManagerBackend.list_secrets = list_secrets  # type: ignore[method-assign]
