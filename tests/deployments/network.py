"""What a set of NetworkPolicies lets through, evaluated as the API defines it: a pod that no
policy of a direction selects is open that way; otherwise a connection passes when one rule of
one selecting policy admits its peer and port. Peers are pods given by their labels and their
namespace's labels (every namespace carries `kubernetes.io/metadata.name`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.deployments.manifests import Manifest, selected


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    # Container port name -> number, for rules that name a port.
    ports: dict[str, int] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)

    def namespace_labelled(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


def _peer_matches(peer: Manifest, policy_namespace: str, pod: Pod) -> bool:
    assert "ipBlock" not in peer, "an ipBlock peer: this helper only evaluates pods"
    pods = peer.get("podSelector")
    namespaces = peer.get("namespaceSelector")
    if namespaces is None and pod.namespace != policy_namespace:
        return False
    if namespaces is not None and not _selects(namespaces, pod.namespace_labelled()):
        return False
    return pods is None or _selects(pods, pod.labels)


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return selected(selector.get("matchLabels", {}), labels)


def _port_matches(rule: Manifest, port: int, protocol: str, destination: Pod) -> bool:
    if not rule.get("ports"):
        return True
    for entry in rule["ports"]:
        number = entry.get("port")
        number = destination.ports.get(number, number) if isinstance(number, str) else number
        if entry.get("protocol", "TCP") == protocol and number in (None, port):
            return True
    return False


def _governing(policies: list[Manifest], pod: Pod, direction: str) -> list[Manifest]:
    return [
        policy
        for policy in policies
        if policy["metadata"].get("namespace") == pod.namespace
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], pod.labels)
    ]


def _admits(
    policies: list[Manifest],
    pod: Pod,
    direction: str,
    peer: Pod,
    port: int,
    protocol: str,
    destination: Pod,
) -> bool:
    governing = _governing(policies, pod, direction)
    if not governing:
        return True
    side = "from" if direction == "Ingress" else "to"
    rules_key = direction.lower()
    return any(
        _port_matches(rule, port, protocol, destination)
        and (
            side not in rule
            or any(_peer_matches(p, policy["metadata"]["namespace"], peer) for p in rule[side])
        )
        for policy in governing
        for rule in policy["spec"].get(rules_key, [])
    )


def connects(
    policies: list[Manifest], source: Pod, destination: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether `source` may open a connection to `destination` on `port`: the source's egress
    and the destination's ingress both allow it."""
    return _admits(
        policies, source, "Egress", destination, port, protocol, destination
    ) and _admits(policies, destination, "Ingress", source, port, protocol, destination)
