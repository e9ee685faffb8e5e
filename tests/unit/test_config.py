from __future__ import annotations

import pytest

from auditcorr.config import Config, ConfigError, load


def test_defaults_serve_the_demo():
    c = Config()
    assert c.tolerance_seconds == 60
    assert c.roles == ("arn:aws:iam::111122223333:role/AppStreamFleetRole",)
    assert c.fleet_cidrs == ("10.40.0.0/16",)
    assert c.claim.source == "role_session_name"


def test_load_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("""
[attribution]
tolerance_seconds = 30
roles = ["arn:aws:iam::1:role/R"]
fleet_cidrs = ["10.0.0.0/8", "fd00::/8"]
[claims]
session_id = "principal_tag:AppStreamSession"
[alerts]
disabled = ["unattributed_activity"]
severity = { unknown_session_id = "critical" }
[logon_check]
enabled = false
""")
    c = load(p)
    assert c.tolerance_seconds == 30 and c.roles == ("arn:aws:iam::1:role/R",)
    assert (c.claim.source, c.claim.argument) == ("principal_tag", "AppStreamSession")
    assert not c.rule_enabled("unattributed_activity") and not c.rule_enabled("logon_user_mismatch")
    assert c.severity["unknown_session_id"] == "CRITICAL"


@pytest.mark.parametrize(("text", "msg"), [
    ("[attribution]\nfleet_cidrs = ['nope']", "fleet_cidrs"),
    ("[claims]\nsession_id = 'key_regex:(a)(b)'", "one capture group"),
    ("[claims]\nsession_id = 'bogus'", "unknown source"),
    ("[typo]\nx = 1", "unknown section"),
    ("[attribution]\ntolerance_seconds = 'x'", "must be a number"),
    ("[alerts]\nseverity = { x = 'loud' }", "severity"),
    ("not toml ==", "not valid TOML"),
])
def test_bad_config_names_the_key(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load(p)


def test_the_inflate_cap_is_configurable_and_derived_from_the_lambda_memory():
    from auditcorr.ingest.inflate import cap_for_memory
    from auditcorr_aws.settings import config_from_env

    assert config_from_env({}).max_inflated_mb is None  # the parsers' default
    derived = config_from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}).max_inflated_mb
    assert derived == cap_for_memory(2048) / (1 << 20) and derived > cap_for_memory(1024) / (1 << 20)
    assert config_from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048", "AUDITCORR_MAX_INFLATED_MB": "64"}
                           ).max_inflated_mb == 64


def test_fleet_groups_reach_the_lambdas_as_json():
    from auditcorr_aws.settings import config_from_env

    env = {"AUDITCORR_FLEETS": '[{"account": "111122223333", "regions": ["us-east-1"], "cidrs": ["10.40.0.0/16"], '
                               '"roles": ["arn:aws:iam::111122223333:role/AppStreamFleetRole"]}, '
                               '{"account": "444455556666", "cidrs": ["10.40.0.0/16"], '
                               '"roles": ["arn:aws:iam::444455556666:role/AppStreamFleetRole"]}]'}
    cfg = config_from_env(env)
    assert [g.account for g in cfg.fleets] == ["111122223333", "444455556666"]
    assert set(cfg.roles) == {"arn:aws:iam::111122223333:role/AppStreamFleetRole",
                              "arn:aws:iam::444455556666:role/AppStreamFleetRole"}
    assert config_from_env({}).fleets == ()
