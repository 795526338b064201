"""AwsSecretsManagerResolver against moto's in-process Secrets Manager."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from connectors.errors import (
    AuthorizationError,
    ConfigurationError,
    CredentialMissing,
    RateLimited,
    ServiceUnavailable,
)
from connectors.secrets.aws import AwsSecretsManagerResolver, _translate
from connectors.secrets.refs import SecretRef, parse_ref
from connectors.secrets.secret import Secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def aws() -> Iterator[SecretsManagerClient]:
    """Fake credentials and region, and moto's Secrets Manager with a few secrets."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            monkeypatch.delenv(name, raising=False)
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(
            Name="prod/slack", SecretString=json.dumps({"token": "xoxb-aws", "port": 443})
        )
        client.create_secret(Name="plain", SecretString="just-a-string")
        client.create_secret(Name="tenants/acme/sf", SecretString=json.dumps({"k": "acme-v"}))
        client.create_secret(Name="tenants/globex/sf", SecretString=json.dumps({"k": "globex-v"}))
        client.create_secret(Name="binary", SecretBinary=b"\x00\x01")
        try:
            yield client
        finally:
            client.close()


def resolve(resolver: AwsSecretsManagerResolver, text: str, tenant: str = "acme") -> Secret:
    try:
        return asyncio.run(resolver.resolve(parse_ref(text), tenant=tenant))
    finally:
        resolver.close()


def test_key_selects_a_member_of_a_json_secret(aws):
    secret = resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:prod/slack#token}")
    assert isinstance(secret, Secret)
    assert secret.reveal() == "xoxb-aws"
    port = resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:prod/slack#port}")
    assert port.reveal() == "443"


def test_without_key_the_whole_secret_string_is_the_value(aws):
    resolver = AwsSecretsManagerResolver(client=aws)
    assert resolve(resolver, "${aws-sm:plain}").reveal() == "just-a-string"
    whole = resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:prod/slack}")
    assert json.loads(whole.reveal())["token"] == "xoxb-aws"


def test_without_a_client_one_is_made_from_the_aws_environment_and_closed(aws):
    resolver = AwsSecretsManagerResolver()
    assert resolve(resolver, "${aws-sm:plain}").reveal() == "just-a-string"
    assert resolver._client is None  # closed and dropped


def test_an_injected_client_is_not_closed_by_the_resolver(aws):
    resolver = AwsSecretsManagerResolver(client=aws)
    assert resolve(resolver, "${aws-sm:plain}").reveal() == "just-a-string"
    assert resolver._client is aws


def test_name_template_scopes_reads_to_the_calling_tenant(aws):
    resolver = AwsSecretsManagerResolver(client=aws, name_template="tenants/{tenant}/{path}")
    assert resolve(resolver, "${aws-sm:sf#k}", tenant="acme").reveal() == "acme-v"
    assert resolve(resolver, "${aws-sm:sf#k}", tenant="globex").reveal() == "globex-v"
    with pytest.raises(CredentialMissing) as info:
        resolve(resolver, "${aws-sm:sf#k}", tenant="initech")
    assert "'initech'" in str(info.value)


def test_missing_secret_names_tenant_and_reference(aws):
    with pytest.raises(CredentialMissing) as info:
        resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:nope#k}")
    text = str(info.value)
    assert "${aws-sm:nope#k}" in text
    assert "'acme'" in text
    assert info.value.provider_code == "ResourceNotFoundException"


def test_missing_key_lists_keys_without_values(aws):
    with pytest.raises(CredentialMissing) as info:
        resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:prod/slack#nope}")
    text = str(info.value)
    assert "['port', 'token']" in text
    assert "xoxb-aws" not in text


def test_key_on_a_non_json_secret_is_a_configuration_error(aws):
    with pytest.raises(ConfigurationError, match="not a JSON object") as info:
        resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:plain#k}")
    assert "just-a-string" not in str(info.value)


def test_binary_secrets_are_refused(aws):
    with pytest.raises(ConfigurationError, match="binary"):
        resolve(AwsSecretsManagerResolver(client=aws), "${aws-sm:binary}")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", AuthorizationError),
        ("ThrottlingException", RateLimited),
        ("DecryptionFailure", ConfigurationError),
        ("InvalidRequestException", CredentialMissing),
        ("InternalServiceError", ServiceUnavailable),
    ],
)
def test_aws_error_codes_map_to_the_error_tree(code, expected):
    exc = ClientError(
        {"Error": {"Code": code, "Message": "body-with-secret-xyz"}}, "GetSecretValue"
    )
    error = _translate(exc, SecretRef("aws-sm", "x"), "acme", "x")
    assert type(error) is expected
    assert error.tenant == "acme"
    assert "body-with-secret-xyz" not in str(error)


def test_name_template_must_contain_the_path():
    with pytest.raises(ConfigurationError):
        AwsSecretsManagerResolver(name_template="fixed")
