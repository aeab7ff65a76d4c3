-- Specs for the juju.xml binding: the element table shape, namespaces,
-- errors with positions, limits, the writer and its escaping.
local xml = require("juju.xml")

describe("juju.xml", function()
  after_each(function()
    collectgarbage()
    collectgarbage()
  end)

  it("decodes into element tables with names, namespaces, attrs, children and text", function()
    local e = assert(xml.decode('<?xml version="1.0"?>\n'
      .. '<Error xmlns="urn:e" kind="s3"><Code>NoSuchKey</Code><Message>a &amp; b</Message></Error>'))
    assert.are.equal("Error", e.name)
    assert.are.equal("urn:e", e.ns)
    assert.are.same({ kind = "s3" }, e.attrs)
    assert.are.equal(2, #e.children)
    assert.are.equal("Code", e.children[1].name)
    assert.are.equal("NoSuchKey", e.children[1].text)
    assert.are.equal("a & b", e.children[2].text)
    assert.are.equal("", e.text)
    assert.are.equal(2, e.line)
    assert.are.equal(1, e.col)
  end)

  it("keys namespaced attributes as {uri}local and leaves ns nil without a namespace", function()
    local e = assert(xml.decode('<a xmlns:p="urn:p" p:k="v" k="w"><b/></a>'))
    assert.is_nil(e.ns)
    assert.are.same({ ["{urn:p}k"] = "v", k = "w" }, e.attrs)
    assert.are.same({}, e.children[1].children)
  end)

  it("reports malformed input with source:line:col and EINVAL", function()
    local v, msg, code = xml.decode("<a>\n<b></a>", "reply.xml")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^reply%.xml:2:%d+: mismatched tag$", msg)
    v, msg, code = xml.decode("<!DOCTYPE a><a/>")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^xml:1:%d+: a DOCTYPE is not allowed", msg)
  end)

  it("enforces depth, element count and size limits", function()
    local deep = string.rep("<a>", 5) .. string.rep("</a>", 5)
    assert.is_table(xml.decode(deep, nil, { max_depth = 5 }))
    local v, msg, code = xml.decode(deep, "d", { max_depth = 4 })
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("^d:1:13: elements nested too deeply$", msg)
    v, msg, code = xml.decode("<a><b/><b/></a>", "n", { max_elements = 2 })
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("too many elements", msg)
    v, msg, code = xml.decode("<abcdef/>", "s", { max_size = 4 })
    assert.is_nil(v)
    assert.are.equal("ERANGE", code)
    assert.matches("larger than the limit of 4", msg)
    assert.has_error(function() xml.decode("<a/>", nil, { max_depth = 0 }) end)
  end)

  it("round-trips an element in the XML namespace with its predeclared prefix (fuzz regression)", function()
    local doc = assert(xml.decode('<a xmlns="urn:a"><xml:b/><c/></a>', "x"))
    local text = assert(xml.encode(doc))
    assert.is_nil(text:find('xmlns="http://www.w3.org/XML/1998/namespace"', 1, true))
    local again = assert(xml.decode(text, "again"))
    assert.are.equal(text, assert(xml.encode(again)))
    assert.are.equal("http://www.w3.org/XML/1998/namespace", again.children[1].ns)
    assert.are.equal("urn:a", again.children[2].ns)
  end)

  it("encodes element tables, declaring namespaces and escaping values", function()
    local text = assert(xml.encode({
      name = "CreateBucketConfiguration", ns = "http://s3.amazonaws.com/doc/2006-03-01/",
      children = { { name = "LocationConstraint", text = "eu-west-1 & <more>" } },
    }, { declaration = true }))
    assert.are.equal('<?xml version="1.0" encoding="UTF-8"?>'
      .. '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
      .. '<LocationConstraint xmlns="">eu-west-1 &amp; &lt;more&gt;</LocationConstraint>'
      .. '</CreateBucketConfiguration>', text)
    assert.are.equal('<a b="1" c="&quot;2&quot;" xmlns:ns1="urn:p" ns1:k="v"/>',
      xml.encode({ name = "a", attrs = { c = '"2"', b = "1", ["{urn:p}k"] = "v" } }))
  end)

  it("round-trips what it decodes", function()
    local src = '<r xmlns="urn:r"><i n="1">x&lt;y</i><i n="2"/></r>'
    assert.are.equal(src, xml.encode(assert(xml.decode(src))))
  end)

  it("refuses text XML cannot carry and misuse", function()
    local v, msg, code = xml.encode({ name = "a", text = "\1" })
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
    assert.matches("<a>", msg)
    assert.has_error(function() xml.encode({ text = "x" }) end)
    assert.has_error(function() xml.encode({ name = "a", children = { "text" } }) end)
    assert.has_error(function() xml.encode({ name = "a", attrs = { k = 1 } }) end)
    local cyc = { name = "a" }
    cyc.children = { cyc }
    assert.has_error(function() xml.encode(cyc) end)
  end)

  it("escapes strings for text and attributes", function()
    assert.are.equal("&lt;a&gt; &amp; \"b\"", xml.escape('<a> & "b"'))
    assert.are.equal("&quot;x&quot;&#10;", xml.escape('"x"\n', true))
    local v, _, code = xml.escape("\255")
    assert.is_nil(v)
    assert.are.equal("EINVAL", code)
  end)
end)
