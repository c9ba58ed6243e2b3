"""Run the Pulumi program offline, under the SDK's mocks: no engine, no credentials, no network.

`run_under_mocks(config)` declares one stack's resources against a recording mock monitor and
returns every resource (type, name, inputs, outputs, parent, provider, options), every provider
function call, and the resolved stack outputs in the contract shape. Outputs are realistic and
deterministic (same stack -> same ids), so outputs resolve and tests can compare runs.

Re-entrant: each run resets the SDK's runtime state, so several stacks can run one after another
in one process (tests, `provision plan` over all stacks): the SDK's public `reset_options` and
`set_mocks` give each run a fresh runtime; the exports are resolved through `apply`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

# The one SDK function used that pulumi.runtime does not export. The public seams fall short:
# `pulumi.runtime.test` runs the same function but then waits synchronously inside the running
# event loop (a nested `_sync_await` that drains and re-pads the loop's queue), about 4% more CPU
# per stack; `pulumi.runtime.run_in_stack` makes its own root Stack, which `set_mocks` has
# already made. Missing: "run this against the configured mocks and wait for its RPCs and outputs".
from pulumi.runtime.stack import run_pulumi_func

from components.program import program
from stackconfig.config import PlatformConfig

ACCOUNT_ID = "123456789012"
PROJECT = "askasia-platform"
PARTITION = "aws"


@dataclass(frozen=True)
class MockResource:
    """One registered resource as the engine would have seen it."""

    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]  # property names as the engine sees them (camelCase)
    outputs: dict[str, Any]
    parent: str  # parent URN; "" for the stack itself
    provider: str  # provider reference "urn::id"; "" means the default provider
    region: str  # where the resource lands: its provider's region or the stack's
    custom: bool
    ignore_changes: tuple[str, ...]
    dependencies: tuple[str, ...]  # URNs it waits for: depends_on plus those its inputs come from
    protect: bool
    secret_inputs: tuple[str, ...] = ()  # inputs the engine would store encrypted
    retain_on_delete: bool = False  # left in the cloud when the program stops declaring it

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.inputs.get("tags") or {})


@dataclass(frozen=True)
class MockCall:
    token: str
    args: dict[str, Any]
    provider: str


@dataclass(frozen=True)
class MockRun:
    stack: str
    region: str
    resources: tuple[MockResource, ...]
    calls: tuple[MockCall, ...]
    outputs: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def of_type(self, type_token: str) -> list[MockResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name_contains: str = "") -> MockResource:
        """Exactly one resource of this type (whose name contains the given text)."""
        found = [r for r in self.of_type(type_token) if name_contains in r.name]
        if len(found) != 1:
            names = [r.name for r in found]
            raise LookupError(f"expected one {type_token} matching {name_contains!r}, found {names}")
        return found[0]

    def named(self, name: str) -> MockResource:
        for r in self.resources:
            if r.name == name:
                return r
        raise LookupError(f"no resource named {name!r}")

    def children(self, parent: MockResource) -> list[MockResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def parent_of(self, resource: MockResource) -> MockResource | None:
        return next((r for r in self.resources if r.urn == resource.parent), None)


class _Ids:
    """Deterministic look-alike identifiers derived from the stack and logical name."""

    def __init__(self, stack: str) -> None:
        self.stack = stack

    def hex(self, *parts: str, n: int = 17) -> str:
        digest = hashlib.sha256("/".join((self.stack, *parts)).encode()).hexdigest()
        return (digest * 2)[:n]

    def uuid(self, *parts: str) -> str:
        h = self.hex(*parts, n=32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def suffix(self, *parts: str, n: int = 6) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        digest = hashlib.sha256("/".join((self.stack, "sfx", *parts)).encode()).digest()
        return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


@dataclass
class _Ctx:
    typ: str
    name: str
    inputs: dict[str, Any]
    region: str
    ids: _Ids
    account: str = ACCOUNT_ID

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"

    def physical_name(self, key: str = "name") -> str:
        # Pulumi auto-names a resource from its logical name plus a random suffix.
        return self.inputs.get(key) or f"{self.name}-{self.ids.hex(self.typ, self.name, n=7)}"


def _kms_key(c: _Ctx) -> tuple[str, dict[str, Any]]:
    multi_region = bool(c.inputs.get("multiRegion"))
    # Multi-Region keys share an "mrk-" id with their replicas.
    key_id = f"mrk-{c.ids.hex('key', c.name, n=32)}" if multi_region else c.ids.uuid("key", c.name)
    return key_id, {"keyId": key_id, "arn": c.arn("kms", f"key/{key_id}"), "multiRegion": multi_region}


def _kms_replica(c: _Ctx) -> tuple[str, dict[str, Any]]:
    key_id = str(c.inputs["primaryKeyArn"]).rsplit("/", 1)[-1]
    return key_id, {"keyId": key_id, "arn": c.arn("kms", f"key/{key_id}"), "keyRotationEnabled": True}


def _cluster(c: _Ctx) -> tuple[str, dict[str, Any]]:
    ident = c.physical_name("clusterIdentifier")
    host = c.ids.hex("rds-host", n=12)
    secret = f"rds!cluster-{c.ids.uuid('secret', c.name)}"
    return ident, {
        "clusterIdentifier": ident,
        "arn": c.arn("rds", f"cluster:{ident}"),
        "clusterResourceId": "cluster-" + c.ids.hex("resource", c.name, n=26).upper(),
        "endpoint": f"{ident}.cluster-{host}.{c.region}.rds.amazonaws.com",
        "readerEndpoint": f"{ident}.cluster-ro-{host}.{c.region}.rds.amazonaws.com",
        "port": c.inputs.get("port", 5432),
        "hostedZoneId": "Z29XKXDKYMONMX",
        "masterUserSecrets": [
            {
                "secretArn": c.arn("secretsmanager", f"secret:{secret}-{c.ids.suffix(c.name)}"),
                "kmsKeyId": c.inputs.get("masterUserSecretKmsKeyId"),
                "secretStatus": "active",
            }
        ],
    }


def _cluster_instance(c: _Ctx) -> tuple[str, dict[str, Any]]:
    ident = c.physical_name("identifier")
    host = c.ids.hex("rds-host", n=12)
    return ident, {
        "identifier": ident,
        "arn": c.arn("rds", f"db:{ident}"),
        "endpoint": f"{ident}.{host}.{c.region}.rds.amazonaws.com",
        "port": 5432,
        "caCertIdentifier": c.inputs.get("caCertIdentifier", "rds-ca-rsa2048-g1"),
        "writer": c.inputs.get("promotionTier", 0) == 0,
    }


def _proxy(c: _Ctx) -> tuple[str, dict[str, Any]]:
    name = c.physical_name()
    return name, {
        "name": name,
        "arn": c.arn("rds", f"db-proxy:prx-{c.ids.hex('proxy', c.name)}"),
        "endpoint": f"{name}.proxy-{c.ids.hex('rds-host', n=12)}.{c.region}.rds.amazonaws.com",
    }


def _certificate(c: _Ctx) -> tuple[str, dict[str, Any]]:
    arn = c.arn("acm", f"certificate/{c.ids.uuid('cert', c.name)}")
    domains = [c.inputs["domainName"], *(c.inputs.get("subjectAlternativeNames") or [])]
    options = [
        {
            "domainName": d,
            "resourceRecordName": f"_{c.ids.hex('dv', d, n=32)}.{d}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{c.ids.hex('dv-value', d, n=32)}.mhbtsbpdnt.acm-validations.aws.",
        }
        for d in domains
    ]
    return arn, {"arn": arn, "domainValidationOptions": options, "status": "ISSUED"}


def _email_identity(c: _Ctx) -> tuple[str, dict[str, Any]]:
    identity = c.inputs["emailIdentity"]
    tokens = [c.ids.hex("dkim", identity, str(i), n=32) for i in range(3)]
    attrs = dict(c.inputs.get("dkimSigningAttributes") or {})
    attrs.update({"tokens": tokens, "status": "SUCCESS", "signingAttributesOrigin": "AWS_SES"})
    return identity, {
        "arn": c.arn("ses", f"identity/{identity}"),
        "identityType": "DOMAIN",
        "dkimSigningAttributes": attrs,
        "verifiedForSendingStatus": True,
    }


def _named(service: str, pattern: str, key: str = "name") -> Callable[[_Ctx], tuple[str, dict[str, Any]]]:
    """Resources whose id is their name and whose ARN embeds it."""

    def build(c: _Ctx) -> tuple[str, dict[str, Any]]:
        name = c.physical_name(key)
        return name, {key: name, "arn": c.arn(service, pattern.format(name=name))}

    return build


def _role(c: _Ctx) -> tuple[str, dict[str, Any]]:
    name = c.physical_name()
    return name, {
        "name": name,
        "arn": f"arn:{PARTITION}:iam::{c.account}:role/{name}",
        "uniqueId": "AROA" + c.ids.hex("role", c.name, n=17).upper(),
    }


def _security_group(c: _Ctx) -> tuple[str, dict[str, Any]]:
    sg = f"sg-{c.ids.hex('sg', c.name)}"
    return sg, {"arn": c.arn("ec2", f"security-group/{sg}"), "name": c.physical_name(), "ownerId": c.account}


def _sg_rule(c: _Ctx) -> tuple[str, dict[str, Any]]:
    rule = f"sgr-{c.ids.hex('sgr', c.name)}"
    return rule, {"arn": c.arn("ec2", f"security-group-rule/{rule}"), "securityGroupRuleId": rule}


def _bucket(c: _Ctx) -> tuple[str, dict[str, Any]]:
    name = c.physical_name("bucket")
    return name, {
        "bucket": name,
        "arn": f"arn:{PARTITION}:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{c.region}.amazonaws.com",
        "region": c.region,
    }


def _topic(c: _Ctx) -> tuple[str, dict[str, Any]]:
    arn = c.arn("sns", c.physical_name())
    return arn, {"arn": arn, "name": c.physical_name(), "owner": c.account}


def _secret(c: _Ctx) -> tuple[str, dict[str, Any]]:
    arn = c.arn("secretsmanager", f"secret:{c.physical_name()}-{c.ids.suffix(c.name)}")
    return arn, {"arn": arn}


def _detector(c: _Ctx) -> tuple[str, dict[str, Any]]:
    detector = c.ids.hex("detector", n=32)
    return detector, {"arn": c.arn("guardduty", f"detector/{detector}"), "accountId": c.account}


def _plan(c: _Ctx) -> tuple[str, dict[str, Any]]:
    plan = c.ids.uuid("plan", c.name)
    return plan, {"arn": c.arn("backup", f"backup-plan:{plan}"), "version": c.ids.hex("v", n=32)}


def _ssm_parameter(c: _Ctx) -> tuple[str, dict[str, Any]]:
    name = c.physical_name()
    return name, {"arn": c.arn("ssm", f"parameter/{name.lstrip('/')}"), "version": 1}


def _record(c: _Ctx) -> tuple[str, dict[str, Any]]:
    name = str(c.inputs.get("name", "")).rstrip(".")
    return f"{c.inputs.get('zoneId')}_{name}_{c.inputs.get('type')}", {"fqdn": name}


def _cert_validation(c: _Ctx) -> tuple[str, dict[str, Any]]:
    return str(c.inputs.get("certificateArn")), {}


_BUILDERS: dict[str, Callable[[_Ctx], tuple[str, dict[str, Any]]]] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/replicaKey:ReplicaKey": _kms_replica,
    "aws:kms/alias:Alias": _named("kms", "{name}"),
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:rds/cluster:Cluster": _cluster,
    "aws:rds/clusterInstance:ClusterInstance": _cluster_instance,
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": _named("rds", "cluster-pg:{name}"),
    "aws:rds/subnetGroup:SubnetGroup": _named("rds", "subgrp:{name}"),
    "aws:rds/proxy:Proxy": _proxy,
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": _named("rds", "target-group:{name}"),
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _sg_rule,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _sg_rule,
    "aws:iam/role:Role": _role,
    "aws:cloudwatch/logGroup:LogGroup": _named("logs", "log-group:{name}"),
    "aws:cloudwatch/eventRule:EventRule": _named("events", "rule/{name}"),
    "aws:s3/bucket:Bucket": _bucket,
    "aws:cloudtrail/trail:Trail": _named("cloudtrail", "trail/{name}"),
    "aws:guardduty/detector:Detector": _detector,
    "aws:sns/topic:Topic": _topic,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:acm/certificateValidation:CertificateValidation": _cert_validation,
    "aws:route53/record:Record": _record,
    "aws:sesv2/emailIdentity:EmailIdentity": _email_identity,
    "aws:sesv2/configurationSet:ConfigurationSet": _named(
        "ses", "configuration-set/{name}", key="configurationSetName"
    ),
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:backup/vault:Vault": _named("backup", "backup-vault:{name}"),
    "aws:backup/plan:Plan": _plan,
    "aws:backup/selection:Selection": _named("backup", "selection:{name}"),
}


class _AwsMocks(pulumi.runtime.Mocks):
    """Realistic, deterministic outputs for the AWS resources and functions the program uses."""

    def __init__(self, stack: str, region: str) -> None:
        self.stack = stack
        self.region = region
        self.ids = _Ids(stack)
        self.provider_regions: dict[str, str] = {}
        self.calls: list[MockCall] = []
        self._zones: dict[str, str] = {}
        self._key_specs: dict[str, str] = {}  # KMS key ARN -> key spec, for GetPublicKey
        self._lock = threading.Lock()

    def region_for(self, provider: str, inputs: dict[str, Any]) -> str:
        return inputs.get("region") or self.provider_regions.get(provider) or self.region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            return self.ids.uuid("provider", args.name), inputs
        if not args.custom:  # component resources have no physical identity
            return "", {}
        ctx = _Ctx(args.typ, args.name, inputs, self.region_for(args.provider or "", inputs), self.ids)
        builder = _BUILDERS.get(args.typ)
        if builder is None:
            service = args.typ.split(":")[1].split("/")[0]
            resource_id = f"{args.name}-{self.ids.hex(args.typ, args.name, n=8)}"
            return resource_id, {**inputs, "arn": ctx.arn(service, resource_id)}
        resource_id, computed = builder(ctx)
        if args.typ == "aws:kms/key:Key":
            with self._lock:
                self._key_specs[computed["arn"]] = str(inputs.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT")
        return resource_id, {**inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        with self._lock:
            self.calls.append(MockCall(args.token, dict(args.args), args.provider or ""))
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/ci-deployer",
                "userId": "AROAEXAMPLEDEPLOYER",
                "id": ACCOUNT_ID,
            }, []
        if token == "aws:iam/getSessionContext:getSessionContext":
            # An assumed role's session ARN resolves to its role; any other ARN is its own issuer.
            arn = str(args.args.get("arn"))
            match = re.fullmatch(r"arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/(.+)", arn)
            issuer = f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}" if match else arn
            return {
                "arn": arn,
                "issuerArn": issuer,
                "issuerId": "AROAEXAMPLEDEPLOYER",
                "issuerName": issuer.rsplit("/", 1)[-1],
                "sessionName": match[4] if match else "",
                "id": arn,
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": PARTITION,
                "dnsSuffix": "amazonaws.com",
                "id": PARTITION,
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if token == "aws:index/getRegion:getRegion":
            region = args.args.get("region") or self.region
            return {"region": region, "name": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}, []
        if token == "aws:ec2/getSubnet:getSubnet":
            subnet = str(args.args.get("id"))
            with self._lock:
                # Subnets in first-seen order land in zones a, b, c, ... like a real 3-AZ VPC.
                zone = self._zones.setdefault(subnet, f"{self.region}{'abcdef'[len(self._zones) % 6]}")
            return {
                "id": subnet,
                "availabilityZone": zone,
                "availabilityZoneId": zone,
                "vpcId": args.args.get("vpcId") or "vpc-0123456789abcdef0",
                "cidrBlock": "10.0.0.0/20",
                "state": "available",
                "mapPublicIpOnLaunch": False,
            }, []
        if token == "aws:kms/getPublicKey:getPublicKey":
            return self._public_key(str(args.args.get("keyId"))), []
        # A new provider function must get a mock here rather than silently return nothing.
        raise NotImplementedError(f"offline.mockrun has no mock for function {token}")

    def _public_key(self, arn: str) -> dict[str, Any]:
        """A SubjectPublicKeyInfo in the layout KMS returns for the key's spec, its bytes derived
        from the ARN (deterministic; a mock key, not a point anyone holds the private half of)."""
        spec = self._key_specs.get(arn)
        material = b"".join(hashlib.sha256(f"{self.stack}/public-key/{arn}/{i}".encode()).digest() for i in range(8))
        if spec == "ECC_NIST_P256":
            der = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004") + material[:64]
        elif spec == "RSA_2048":
            prefix = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100")
            der = prefix + bytes([material[0] | 0x80]) + material[1:256] + bytes.fromhex("0203010001")
        else:
            raise ValueError(f"GetPublicKey of {arn}: not an asymmetric key declared in this run ({spec})")
        return {
            "id": arn,
            "arn": arn,
            "keyId": arn,
            "customerMasterKeySpec": spec,
            "keyUsage": "SIGN_VERIFY",
            "publicKey": base64.b64encode(der).decode("ascii"),
            "publicKeyPem": "",
            "signingAlgorithms": [],
            "encryptionAlgorithms": [],
        }


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent, provider and options."""

    def __init__(self, mocks: _AwsMocks) -> None:
        super().__init__(mocks)
        self.aws = mocks
        self.recorded: list[MockResource] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources[response.urn]
        raw = rpc.deserialize_properties(request.object)
        inputs = {key: _reveal(value) for key, value in raw.items()}
        if request.type.startswith("pulumi:providers:"):
            with self._lock:
                self.aws.provider_regions[f"{response.urn}::{response.id}"] = inputs.get("region") or self.aws.region
        resource = MockResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            id=registration.id or "",
            inputs=inputs,
            outputs=_reveal(dict(registration.state)),
            parent=request.parent,
            provider=request.provider,
            region=self.aws.region_for(request.provider, inputs),
            custom=request.custom,
            ignore_changes=tuple(request.ignoreChanges),
            dependencies=tuple(request.dependencies),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            secret_inputs=tuple(sorted(key for key, value in raw.items() if rpc.is_rpc_secret(value))),
        )
        with self._lock:
            self.recorded.append(resource)
        return response


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_function_under_mocks(body: Callable[[], None], *, stack: str, region: str) -> MockRun:
    """Run any Pulumi declaration code under recording mocks (used for single components)."""
    mocks = _AwsMocks(stack, region)
    monitor = _RecordingMonitor(mocks)
    logger = logging.Logger(f"askasia.mockrun.{stack}")
    handler = _ListHandler()
    logger.addHandler(handler)

    # A fresh runtime per run: reset_options drops the previous run's root stack and its pending
    # RPCs and outputs; set_mocks then makes this run's root stack against the recording monitor.
    pulumi.runtime.reset_options(project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, logger=logger, monitor=monitor)
    root = pulumi.runtime.get_root_resource()
    outputs: dict[str, Any] = {}

    def declare() -> None:
        body()
        pulumi.Output.from_input(getattr(root, "outputs", {})).apply(outputs.update)

    # run_pulumi_func waits for every pending RPC and Output (this apply too), then re-raises what
    # the program raised. The loop is the one the SDK scheduled the root stack's work on.
    asyncio.get_event_loop().run_until_complete(run_pulumi_func(declare))
    return MockRun(
        stack=stack,
        region=region,
        resources=tuple(monitor.recorded),
        calls=tuple(mocks.calls),
        outputs=_plain(outputs),
        warnings=tuple(handler.messages),
    )


def run_under_mocks(config: PlatformConfig) -> MockRun:
    """Run the program for one stack offline; raises what the program raises (e.g. a refusal)."""
    return run_function_under_mocks(lambda: program(config), stack=config.stack, region=config.region)


def run_stacks_under_mocks(configs: Iterable[PlatformConfig]) -> list[MockRun]:
    return [run_under_mocks(config) for config in configs]


def _reveal(value: Any) -> Any:
    """The plain value inside any secret wrappers (tests assert on what would be stored)."""
    if rpc.is_rpc_secret(value):
        return _reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Outputs as JSON-ready values (what `pulumi stack output --json` would print)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "ACCOUNT_ID",
    "MockCall",
    "MockResource",
    "MockRun",
    "run_function_under_mocks",
    "run_stacks_under_mocks",
    "run_under_mocks",
]
