"""Which of a probe session's statements are prepared (provisioner/verify/prepared.py)."""

from __future__ import annotations

from provisioner.verify.prepared import Bound, Preparer

COUNT = Bound(b"select count(*) from platform.tenants where id = $1", (b"x",), (0,), (0,))
GROUP = Bound(b'set role "askasia_tenant_app"')


def test_a_statement_is_prepared_when_made_a_second_time_and_executed_by_name_after():
    preparer = Preparer()
    assert preparer.plan([[COUNT]]) == ([], [[None]])
    parses, names = preparer.plan([[COUNT]])
    assert [p.statement for p in parses] == [COUNT] and names == [[parses[0].name]]
    assert preparer.plan([[COUNT], [COUNT]]) == ([], [[parses[0].name], [parses[0].name]])


def test_twice_in_one_pipeline_is_parsed_first_and_each_role_has_its_own_name():
    preparer = Preparer()
    parses, names = preparer.plan([[COUNT], [GROUP, COUNT], [COUNT], [GROUP, COUNT]])
    login, group = parses[0].name, parses[2].name
    assert [p.statement for p in parses] == [COUNT, GROUP, COUNT] and len({login, group}) == 2
    assert names == [[login], [parses[1].name, group], [login], [parses[1].name, group]]


def test_a_refused_parse_is_sent_as_it_is_and_an_aborted_one_parsed_again_by_a_new_name():
    preparer = Preparer()
    parses, _ = preparer.plan([[COUNT], [GROUP], [COUNT], [GROUP]])
    refused, aborted = parses
    preparer.settle(refused, parsed=False, refused=True)
    preparer.settle(aborted, parsed=False, refused=False)
    parses, names = preparer.plan([[COUNT], [GROUP]])
    assert [p.statement for p in parses] == [GROUP] and parses[0].name not in (refused.name, aborted.name)
    assert names == [[None], [parses[0].name]]


def test_the_same_text_with_values_of_other_types_is_another_statement():
    """A name parsed for one set of parameter types is never executed with values of others:
    the server would read an int8 bound to an int2 parameter as a malformed message."""
    small = Bound(b"select nextval($1)", (b"\x00\x01",), (21,), (1,))
    large = Bound(b"select nextval($1)", (b"\x00\x00\x00\x00\x00\x00\x00\x01",), (20,), (1,))
    preparer = Preparer()
    parses, names = preparer.plan([[small], [large], [small], [large]])
    assert [p.statement for p in parses] == [small, large]
    assert names == [[parses[0].name], [parses[1].name], [parses[0].name], [parses[1].name]]
