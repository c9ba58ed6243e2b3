import pytest

from provisioner.errors import InputError
from provisioner.names import TenantNames, check_id, check_plan, check_slug, new_id


def test_generated_ids_are_opaque_and_valid():
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(check_id(i) == i for i in ids)


def test_catalog_names_derive_from_the_id_and_fit_the_limit():
    names = TenantNames(new_id())
    for name in (names.schema, names.owner_role, names.app_role, names.ro_role):
        assert name.startswith("t_") and len(name.encode()) <= 63


@pytest.mark.parametrize("bad", ["UPPER", "with space", "x" * 64, "é-acute", "semi;", "", "9starts-digit"])
def test_bad_slugs_are_refused(bad):
    with pytest.raises(InputError, match="is invalid"):
        check_slug(bad)


def test_bad_ids_and_plans_are_refused():
    with pytest.raises(InputError):
        TenantNames("acme")
    with pytest.raises(InputError, match="choose one of"):
        check_plan("platinum")
