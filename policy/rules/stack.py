"""Rules over several resources: a control that lives on a separate resource must exist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policy.rules import rds, s3, secrets
from policy.rules.base import (
    Resource,
    policy_document,
    present,
    principal_is_wildcard,
    seq,
    stack_rule,
    statements,
)

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"


def identifiers(res: Resource) -> set[str]:
    """Values another resource may use to point at `res` (id, name, arn...)."""
    ids = {res.name}
    for props in (res.inputs, res.outputs or {}):
        for key in ("id", "name", "arn", "bucket", "clusterIdentifier"):
            value = props.get(key)
            if isinstance(value, str) and value:
                ids.add(value)
    return ids


def points_at(child: Resource, prop: str, target: Resource) -> bool:
    if child.refs and target.name in (child.refs.get(prop) or ()):
        return True
    value = child.inputs.get(prop)
    return isinstance(value, str) and value in identifiers(target)


@stack_rule(
    "s3-bucket-controls-attached",
    "mandatory",
    BUCKETS[0],
    "Every bucket has a public-access block, a TLS-only policy, default KMS encryption and a lifecycle.",
    "Declare BucketPublicAccessBlock, BucketPolicy, BucketServerSideEncryptionConfiguration and "
    "BucketLifecycleConfiguration for the bucket (the per-resource rules check their contents).",
    controls=("S3.1", "S3.5", "S3.10"),
)
def bucket_controls_attached(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    needs = {
        "public access block": (s3.PUBLIC_ACCESS_BLOCK,),
        "bucket policy": (s3.BUCKET_POLICY,),
        "encryption configuration": (s3.SSE, s3.SSE_V2),
        "lifecycle configuration": (s3.LIFECYCLE, s3.LIFECYCLE_V2),
    }
    found: list[tuple[str, str]] = []
    for bucket in (r for r in resources if r.type in BUCKETS):
        missing = [
            label
            for label, types in needs.items()
            if not any(r.type in types and points_at(r, "bucket", bucket) for r in resources)
        ]
        if missing:
            found.append((bucket.name, f"no {', '.join(missing)} for this bucket"))
    return found


@stack_rule(
    "rds-cluster-force-ssl-linked",
    "mandatory",
    rds.CLUSTER,
    "Each Aurora PostgreSQL cluster uses a parameter group from this stack that sets rds.force_ssl=1.",
    "Point db_cluster_parameter_group_name at the component's ClusterParameterGroup.",
)
def cluster_force_ssl_linked(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    groups = [r for r in resources if r.type == rds.PARAMS]
    found: list[tuple[str, str]] = []
    for cluster in (r for r in resources if r.type == rds.CLUSTER):
        if "postgres" not in str(cluster.inputs.get("engine") or ""):
            continue
        if not present(cluster.inputs.get("dbClusterParameterGroupName")):
            continue  # rds-cluster-custom-parameter-group reports it
        linked = [g for g in groups if points_at(cluster, "dbClusterParameterGroupName", g)]
        if not linked:
            found.append((cluster.name, "parameter group is not declared in this stack"))
        elif any(rds.params_force_ssl(g.inputs) for g in linked):
            found.append((cluster.name, "its parameter group does not set rds.force_ssl=1"))
    return found


@stack_rule(
    "rds-cluster-multi-az",
    "advisory",
    rds.CLUSTER,
    "Each Aurora cluster has at least two instances, so a failure fails over to another AZ.",
    "Run two or more instances per cell (config instances >= 2).",
    controls=("RDS.15",),
)
def cluster_multi_az(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    instances = [r for r in resources if r.type == rds.INSTANCE]
    found: list[tuple[str, str]] = []
    for cluster in (r for r in resources if r.type == rds.CLUSTER):
        count = sum(points_at(i, "clusterIdentifier", cluster) for i in instances)
        if count < 2:
            found.append((cluster.name, f"{count} instance(s): no failover target"))
    return found


@stack_rule(
    "secret-rotation-configured",
    "advisory",
    secrets.SECRET,
    "Every Secrets Manager secret the stack declares has automatic rotation.",
    "Declare a SecretRotation for the secret (rotation Lambda and schedule).",
    controls=("SecretsManager.1",),
)
def secret_rotation(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    rotations = [r for r in resources if r.type == secrets.ROTATION]
    return [
        (secret.name, "no SecretRotation for this secret")
        for secret in (r for r in resources if r.type == secrets.SECRET)
        if not any(points_at(rot, "secretId", secret) for rot in rotations)
    ]


# The name RDS gives every master secret it manages (manage_master_user_password).
MANAGED_MASTER_SECRET = ":secret:rds!"


def _master_secret_arns(clusters: Sequence[Resource]) -> set[str]:
    arns: set[str] = set()
    for cluster in clusters:
        for props in (cluster.inputs, cluster.outputs or {}):
            for secret in seq(props.get("masterUserSecrets")):
                arn = secret.get("secretArn") if isinstance(secret, Mapping) else None
                if isinstance(arn, str) and arn:
                    arns.add(arn)
    return arns


@stack_rule(
    "rds-proxy-not-master",
    "mandatory",
    rds.PROXY,
    "No RDS Proxy logs in to the database with a cluster's master secret: every application "
    "connecting through it would be the master, past row level security.",
    "Use end-to-end IAM (default_auth_scheme='IAM_AUTH') for the platform's service role, or register "
    "the secret of a dedicated role; never the cluster's master_user_secrets.",
)
def proxy_not_master(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    clusters = [r for r in resources if r.type == rds.CLUSTER]
    masters = _master_secret_arns(clusters)
    found: list[tuple[str, str]] = []
    for proxy in (r for r in resources if r.type == rds.PROXY):
        for i, auth in enumerate(seq(proxy.inputs.get("auths"))):
            arn = auth.get("secretArn") if isinstance(auth, Mapping) else None
            if isinstance(arn, str) and (arn in masters or MANAGED_MASTER_SECRET in arn):
                found.append((proxy.name, f"auths[{i}] is the master secret {arn}"))
        # In a preview the ARN is unknown; CrossGuard still says which resource it came from.
        built_from = set((proxy.refs or {}).get("auths") or ())
        for cluster in clusters:
            if cluster.name in built_from:
                found.append((proxy.name, f"auths are built from cluster {cluster.name}'s master secret"))
    return found


def _denies_all_but_named(policy: object) -> bool:
    """A Deny of GetSecretValue to every principal except those aws:PrincipalArn names."""
    doc = policy_document(policy)
    for statement in statements(doc) if doc else []:
        actions = seq(statement.get("Action"))
        condition = statement.get("Condition")
        spared = condition.get("StringNotEquals") if isinstance(condition, Mapping) else None
        if (
            statement.get("Effect") == "Deny"
            and principal_is_wildcard(statement.get("Principal"))
            and any(a in ("secretsmanager:GetSecretValue", "secretsmanager:*", "*") for a in actions)
            and isinstance(spared, Mapping)
            and present(spared.get("aws:PrincipalArn"))
        ):
            return True
    return False


@stack_rule(
    "rds-master-secret-readers",
    "mandatory",
    rds.CLUSTER,
    "A cluster's RDS-managed master secret has a resource policy denying GetSecretValue to every "
    "principal but the deploy role: an explicit deny beats any identity policy that grants it later.",
    "Declare an aws.secretsmanager.SecretPolicy on master_user_secrets[0].secret_arn with a Deny of "
    "secretsmanager:GetSecretValue to Principal '*' under StringNotEquals aws:PrincipalArn <deploy role>.",
)
def master_secret_readers(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    policies = [r for r in resources if r.type == SECRET_POLICY]
    found: list[tuple[str, str]] = []
    for cluster in (r for r in resources if r.type == rds.CLUSTER):
        if cluster.inputs.get("manageMasterUserPassword") is not True:
            continue
        masters = _master_secret_arns([cluster])
        mine = [
            p
            for p in policies
            if p.inputs.get("secretArn") in masters or cluster.name in ((p.refs or {}).get("secretArn") or ())
        ]
        if not mine:
            found.append((cluster.name, "its master secret has no resource policy"))
        elif not any(_denies_all_but_named(p.inputs.get("policy")) for p in mine):
            names = ", ".join(p.name for p in mine)
            found.append((cluster.name, f"{names} does not deny GetSecretValue to all but named principals"))
    return found
