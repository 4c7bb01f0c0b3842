from integration_agent.secrets import MASK, Redactor


def test_masks_secrets_anywhere_in_nested_data():
    redact = Redactor(["s3cr3t-value", "another-secret"])
    event = {"stdout": "key=s3cr3t-value ok", "res": {"cmd": ["echo", "another-secret"], "n": 3},
             "s3cr3t-value": 1}
    out = redact(event)
    flat = repr(out)
    assert "s3cr3t-value" not in flat and "another-secret" not in flat
    assert out["res"]["n"] == 3 and MASK in out["stdout"]


def test_longer_secret_masked_whole_and_short_values_ignored():
    redact = Redactor(["abcd", "abcdefgh", "x"])
    assert redact.text("abcdefgh x") == f"{MASK} x"
    assert not Redactor([])
