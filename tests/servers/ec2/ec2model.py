"""botocore's EC2 service model on the server side: turn an EC2 Query
request's flat parameters into the operation's input structure (refusing
unknown parameters, missing required members, values of the wrong type or
outside an enum, as EC2 does), and write an output structure as EC2's XML
from the operation's output shape (so every element name comes from the
model, and an answer the fake builds with a member the model lacks fails
loudly instead of reaching a client).

The fake never trusts its own idea of EC2's wire names: both directions are
driven by botocore.session.get_session().get_service_model('ec2')."""

import base64
import datetime
from xml.sax.saxutils import escape

import botocore.session

# Parameters of the Query protocol itself, not of any operation.
PROTOCOL_PARAMS = {"Action", "Version", "Timestamp", "Expires", "SignatureVersion",
                   "SignatureMethod", "Signature", "AWSAccessKeyId"}


class ApiError(Exception):
    """An EC2 error answer: HTTP status, EC2 code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message):
    return ApiError(400, "InvalidParameterValue", message)


class Model:
    def __init__(self):
        self.service = botocore.session.get_session().get_service_model("ec2")
        self.api_version = self.service.api_version
        self.operations = set(self.service.operation_names)

    def operation(self, action):
        if action not in self.operations:
            raise ApiError(400, "InvalidAction",
                           "The action %s is not valid for this web service." % action)
        return self.service.operation_model(action)

    # ---- requests ------------------------------------------------------

    def parse_input(self, action, params):
        """params: {name: value} (strings, as received). Returns the input
        structure with botocore member names, or raises ApiError."""
        op = self.operation(action)
        shape = op.input_shape
        keys = {k: v for k, v in params.items() if k not in PROTOCOL_PARAMS}
        used = set()
        value = {} if shape is None else self._parse_structure(shape, "", keys, used, True)
        unknown = sorted(set(keys) - used)
        if unknown:
            raise ApiError(400, "UnknownParameter",
                           "The parameter %s is not recognized" % unknown[0])
        return value

    @staticmethod
    def _wire_name(member_shape, member_name):
        # EC2Serializer._get_serialized_name: queryName, else the
        # capitalised locationName, else the member name.
        ser = member_shape.serialization
        if "queryName" in ser:
            return ser["queryName"]
        if "name" in ser:
            return ser["name"][0].upper() + ser["name"][1:]
        return member_name

    def _parse(self, shape, key, params, used):
        t = shape.type_name
        if t == "structure":
            return self._parse_structure(shape, key, params, used, False)
        if t == "list":
            return self._parse_list(shape, key, params, used)
        if t == "map":
            raise invalid("map parameters are not supported by the EC2 fake: %s" % key)
        if key not in params:
            return None
        used.add(key)
        raw = params[key]
        if t in ("integer", "long"):
            try:
                v = int(raw)
            except ValueError:
                raise invalid("Invalid value '%s' for %s" % (raw, key)) from None
            lo = shape.metadata.get("min")
            if lo is not None and v < lo:
                raise invalid("Value (%s) for parameter %s is invalid. Must be at least %s" % (raw, key, lo))
            return v
        if t == "boolean":
            if raw.lower() not in ("true", "false"):
                raise invalid("Invalid value '%s' for %s; expected true or false" % (raw, key))
            return raw.lower() == "true"
        if t in ("double", "float"):
            try:
                return float(raw)
            except ValueError:
                raise invalid("Invalid value '%s' for %s" % (raw, key)) from None
        if t == "blob":
            try:
                return base64.b64decode(raw, validate=True)
            except ValueError:
                raise invalid("Invalid BASE64 encoding of %s" % key) from None
        if t == "timestamp":
            return raw
        enum = shape.enum
        if enum and raw not in enum:
            raise invalid("Value (%s) for parameter %s is invalid." % (raw, key))
        return raw

    def _parse_structure(self, shape, prefix, params, used, top):
        out = {}
        if not top and not any(k.startswith(prefix + ".") for k in params):
            return None
        for name, member in shape.members.items():
            wire = self._wire_name(member, name)
            key = wire if top else prefix + "." + wire
            v = self._parse(member, key, params, used)
            if v is not None:
                out[name] = v
        for req in shape.required_members:
            if req not in out:
                wire = self._wire_name(shape.members[req], req)
                where = wire if top else prefix + "." + wire
                raise ApiError(400, "MissingParameter",
                               "The request must contain the parameter %s" % where)
        return out

    def _parse_list(self, shape, prefix, params, used):
        # EC2 lists are Name.1, Name.2, ... (Name.N.Member for structures).
        indices = set()
        dot = prefix + "."
        for k in params:
            if k.startswith(dot):
                head = k[len(dot):].split(".", 1)[0]
                if head.isdigit() and int(head) > 0:
                    indices.add(int(head))
        if not indices:
            return None
        out = []
        for i in sorted(indices):
            v = self._parse(shape.member, "%s%d" % (dot, i), params, used)
            if v is not None:
                out.append(v)
        return out

    # ---- responses -----------------------------------------------------

    def response_xml(self, action, version, request_id, value):
        op = self.operation(action)
        ns = "http://ec2.amazonaws.com/doc/%s/" % version
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s">' % (action, ns),
                 "<requestId>%s</requestId>" % request_id]
        shape = op.output_shape
        if shape is not None:
            self._write_members(shape, value or {}, parts)
        elif value:
            raise ValueError("%s has no output shape but the fake answered %r" % (action, value))
        parts.append("</%sResponse>" % action)
        return "".join(parts).encode("utf-8")

    def _write_members(self, shape, value, parts):
        members = shape.members
        for name, v in value.items():
            if name not in members:
                raise ValueError("%s has no member %s (the fake answered %r)" % (shape.name, name, v))
            if v is None:
                continue
            member = members[name]
            tag = member.serialization.get("name", name)
            self._write(member, tag, v, parts)

    def _write(self, shape, tag, v, parts):
        t = shape.type_name
        if t == "structure":
            if not isinstance(v, dict):
                raise ValueError("%s: expected a structure, got %r" % (tag, v))
            parts.append("<%s>" % tag)
            self._write_members(shape, v, parts)
            parts.append("</%s>" % tag)
        elif t == "list":
            if not isinstance(v, (list, tuple)):
                raise ValueError("%s: expected a list, got %r" % (tag, v))
            item = shape.member.serialization.get("name", "member")
            if shape.serialization.get("flattened"):
                for e in v:
                    self._write(shape.member, item, e, parts)
            else:
                parts.append("<%s>" % tag)
                for e in v:
                    self._write(shape.member, item, e, parts)
                parts.append("</%s>" % tag)
        else:
            if t == "boolean":
                text = "true" if v else "false"
            elif t == "timestamp":
                if isinstance(v, (int, float)):
                    v = datetime.datetime.fromtimestamp(v, datetime.timezone.utc)
                text = v.strftime("%Y-%m-%dT%H:%M:%S.000Z") if hasattr(v, "strftime") else str(v)
            elif t in ("integer", "long"):
                text = str(int(v))
            elif t == "blob":
                text = base64.b64encode(v).decode()
            else:
                if shape.enum and v not in shape.enum:
                    raise ValueError("%s: %r is not one of the model's values" % (tag, v))
                text = str(v)
            parts.append("<%s>%s</%s>" % (tag, escape(text), tag))


def error_xml(code, message, request_id):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
            "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>"
            % (escape(code), escape(message), request_id)).encode("utf-8")
