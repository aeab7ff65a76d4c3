"""Request bodies of the Service Management API checked by an implementation
this project did not write: Debian python3-azure's legacy
azure.servicemanagement SDK. Each body is read into the SDK's own model
objects (LinuxConfigurationSet, ConfigurationSet, ConfigurationSetInputEndpoint,
OSVirtualHardDisk, ...) and written again with the SDK's _XmlSerializer; the
two documents must hold the same elements, nested alike, in the same order
(the DataContract serializer behind the real API is order-sensitive), with
the same text. Anything else is a BodyError naming the first difference."""

import base64
import xml.etree.ElementTree as ET

from azure.servicemanagement import models as M
from azure.servicemanagement._serialization import _XmlSerializer as S

NS = "http://schemas.microsoft.com/windowsazure"
NET_NS = "http://schemas.microsoft.com/ServiceHosting/2011/07/NetworkConfiguration"


class BodyError(Exception):
    pass


def _local(tag):
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def _leaves(el, path=""):
    """(path, text) of every non-empty leaf in document order."""
    p = path + "/" + _local(el.tag)
    kids = list(el)
    if not kids:
        t = (el.text or "").strip()
        return [(p, t)] if t else []
    out = []
    for k in kids:
        out.extend(_leaves(k, p))
    return out


def _parse(body, root_name):
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise BodyError("not XML: %s" % e)
    if root.tag != "{%s}%s" % (NS, root_name):
        raise BodyError("root element is %s, want {%s}%s" % (root.tag, NS, root_name))
    return root


def _compare(sent, sdk_xml, what):
    a = _leaves(sent)
    b = _leaves(ET.fromstring(sdk_xml))
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            raise BodyError("%s: element %d is %r, azure.servicemanagement writes %r" % (what, i + 1, x, y))


def _t(el, name):
    c = el.find("{%s}%s" % (NS, name))
    if c is None:
        return None
    return (c.text or "").strip() or None


def _req(el, name, what):
    v = _t(el, name)
    if v is None:
        raise BodyError("%s: %s is missing" % (what, name))
    return v


def _b64(v, what):
    try:
        return base64.b64decode(v.encode(), validate=True).decode("utf-8")
    except Exception:
        raise BodyError("%s: Label is not base64" % what)


def affinity_group(body):
    root = _parse(body, "CreateAffinityGroup")
    what = "CreateAffinityGroup"
    g = {"name": _req(root, "Name", what), "label": _b64(_req(root, "Label", what), what),
         "description": _t(root, "Description"), "location": _req(root, "Location", what)}
    _compare(root, S.create_affinity_group_to_xml(g["name"], g["label"], g["description"], g["location"]), what)
    return g


def hosted_service(body):
    root = _parse(body, "CreateHostedService")
    what = "CreateHostedService"
    s = {"name": _req(root, "ServiceName", what), "label": _b64(_req(root, "Label", what), what),
         "description": _t(root, "Description"), "location": _t(root, "Location"),
         "affinity_group": _t(root, "AffinityGroup")}
    if not s["location"] and not s["affinity_group"]:
        raise BodyError("CreateHostedService: neither Location nor AffinityGroup")
    _compare(root, S.create_hosted_service_to_xml(s["name"], s["label"], s["description"], s["location"],
                                                  s["affinity_group"], None), what)
    return s


def _linux_set(cs):
    lc = M.LinuxConfigurationSet(_t(cs, "HostName"), _t(cs, "UserName"), _t(cs, "UserPassword"))
    d = _t(cs, "DisableSshPasswordAuthentication")
    lc.disable_ssh_password_authentication = None if d is None else (d == "true")
    lc.ssh = None
    # The SDK would base64 the text it is given (str() of bytes in Python
    # 3): CustomData is checked here (base64, last in the set, as the SDK
    # writes it) and left out of the comparison.
    lc.custom_data = None
    raw_el = cs.find("{%s}CustomData" % NS)
    lc.raw_custom_data = None
    if raw_el is not None:
        if list(cs)[-1] is not raw_el:
            raise BodyError("CustomData must be the last element of LinuxProvisioningConfiguration")
        try:
            lc.raw_custom_data = base64.b64decode((raw_el.text or "").strip().encode(), validate=True)
        except Exception:
            raise BodyError("CustomData is not base64")
        cs.remove(raw_el)
    return lc


def _network_set(cs):
    ns = M.ConfigurationSet()
    eps = cs.find("{%s}InputEndpoints" % NS)
    for ep in (list(eps) if eps is not None else []):
        e = M.ConfigurationSetInputEndpoint(_t(ep, "Name"), _t(ep, "Protocol"), _t(ep, "Port"),
                                            _t(ep, "LocalPort"), _t(ep, "LoadBalancedEndpointSetName"))
        dsr = _t(ep, "EnableDirectServerReturn")
        e.enable_direct_server_return = None if dsr is None else (dsr == "true")
        e.idle_timeout_in_minutes = _t(ep, "IdleTimeoutInMinutes")
        pr = ep.find("{%s}LoadBalancerProbe" % NS)
        if pr is not None:
            e.load_balancer_probe.path = _t(pr, "Path")
            e.load_balancer_probe.port = _t(pr, "Port")
            e.load_balancer_probe.protocol = _t(pr, "Protocol")
        ns.input_endpoints.input_endpoints.append(e)
    sn = cs.find("{%s}SubnetNames" % NS)
    ns.subnet_names = [(_e.text or "").strip() for _e in (list(sn) if sn is not None else [])]
    ns.public_ips = None
    ns.static_virtual_network_ip_address = _t(cs, "StaticVirtualNetworkIPAddress")
    return ns


def deployment(body):
    """A virtual machine deployment with one role: a dict of what the
    server needs (names, custom data decoded, endpoints)."""
    root = _parse(body, "Deployment")
    what = "Deployment"
    roles = root.findall("{%s}RoleList/{%s}Role" % (NS, NS))
    if len(roles) != 1:
        raise BodyError("Deployment: RoleList must hold one Role (has %d)" % len(roles))
    role = roles[0]
    linux, net = None, None
    for cs in role.findall("{%s}ConfigurationSets/{%s}ConfigurationSet" % (NS, NS)):
        kind = _t(cs, "ConfigurationSetType")
        if kind == "LinuxProvisioningConfiguration":
            linux = _linux_set(cs)
        elif kind == "NetworkConfiguration":
            net = _network_set(cs)
        else:
            raise BodyError("Deployment: unknown ConfigurationSetType %r" % kind)
    if linux is None:
        raise BodyError("Deployment: no LinuxProvisioningConfiguration set")
    osd = role.find("{%s}OSVirtualHardDisk" % NS)
    disk = None
    if osd is not None:
        disk = M.OSVirtualHardDisk(_t(osd, "SourceImageName"), _t(osd, "MediaLink"), _t(osd, "HostCaching"),
                                   _t(osd, "DiskLabel"), _t(osd, "DiskName"), _t(osd, "OS"))
    else:
        raise BodyError("Deployment: no OSVirtualHardDisk")
    sdk = S.virtual_machine_deployment_to_xml(
        _req(root, "Name", what), _req(root, "DeploymentSlot", what), _t(root, "Label"),
        _req(role, "RoleName", what), linux, disk, _req(role, "RoleType", what), net,
        _t(role, "AvailabilitySetName"), None, _req(role, "RoleSize", what), _t(root, "VirtualNetworkName"),
        None, None, None, None, None, None)
    # CustomData: the SDK base64s the bytes we decoded, so it round-trips too
    _compare(root, sdk, what)
    eps = []
    if net is not None:
        for e in net.input_endpoints:
            eps.append({"name": e.name, "protocol": e.protocol, "port": int(e.port), "local_port": int(e.local_port)})
    return {"name": _t(root, "Name"), "slot": _t(root, "DeploymentSlot"), "label": _t(root, "Label"),
            "role": _t(role, "RoleName"), "role_size": _t(role, "RoleSize"), "host_name": linux.host_name,
            "user_name": linux.user_name, "custom_data": linux.raw_custom_data, "endpoints": eps,
            "image": disk.source_image_name, "media_link": disk.media_link,
            "virtual_network": _t(root, "VirtualNetworkName")}


def network_configuration(body):
    """The subscription's network configuration document (the SDK has no
    model for it: checked against its namespace and shape). Returns the
    names and locations of its sites."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise BodyError("network configuration is not XML: %s" % e)
    if root.tag != "{%s}NetworkConfiguration" % NET_NS:
        raise BodyError("network configuration root is %s, want {%s}NetworkConfiguration" % (root.tag, NET_NS))
    sites = {}
    for site in root.iter("{%s}VirtualNetworkSite" % NET_NS):
        name = site.get("name")
        if not name:
            raise BodyError("a VirtualNetworkSite has no name")
        if name in sites:
            raise BodyError("VirtualNetworkSite %s appears twice" % name)
        prefixes = [(p.text or "").strip() for p in site.iter("{%s}AddressPrefix" % NET_NS)]
        if not prefixes:
            raise BodyError("VirtualNetworkSite %s has no AddressSpace/AddressPrefix" % name)
        sites[name] = {"location": site.get("Location"), "affinity_group": site.get("AffinityGroup"),
                       "prefixes": prefixes}
    return sites


class _Resp:
    def __init__(self, body):
        self.body = body


def self_check_operation(xml_text):
    """Our own answers parsed back with the SDK's deserialiser."""
    from azure.servicemanagement._serialization import _MinidomXmlToObject as D
    op = D.parse_response(_Resp(xml_text), M.Operation)
    return op.status
