/* test_xml.c: core/xml parsing (tree shape, namespaces, limits, errors
 * with positions, refused DTDs) and the writer (escaping, namespaces). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xml.h"

static jj_xml_node *parse_ok(const char *s)
{
    jj_xml_node *n = NULL;
    jj_error err;
    int rc = jj_xml_parse(s, strlen(s), "t.xml", NULL, &n, &err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s:%d:%d: %s\n", err.file, err.line, err.column, err.message);
    return n;
}

static void test_tree_shape(void)
{
    jj_xml_node *n = parse_ok("<?xml version=\"1.0\"?>\n<R xmlns=\"urn:r\" a=\"1\">"
                              "<item>x &amp; y</item><item><![CDATA[<z>]]></item>\n</R>");
    if (!n)
        return;
    CHECK_STR(n->name, "R");
    CHECK_STR(n->ns, "urn:r");
    CHECK_INT(n->nattrs, 1);
    CHECK_STR(n->attrs[0].name, "a");
    CHECK(n->attrs[0].ns == NULL);
    CHECK_STR(n->attrs[0].value, "1");
    CHECK_INT(n->nchildren, 2);
    CHECK_STR(n->children[0]->text, "x & y");
    CHECK_STR(n->children[0]->ns, "urn:r");
    CHECK_STR(n->children[1]->text, "<z>");
    CHECK_STR(n->text, "\n");
    CHECK_INT(n->line, 2);
    CHECK_INT(n->column, 1);
    jj_xml_free(n);
}

static void test_namespaced_attrs(void)
{
    jj_xml_node *n = parse_ok("<a xmlns:p=\"urn:p\" p:k=\"v\"><p:b xmlns=\"\"/><c/></a>");
    if (!n)
        return;
    CHECK(n->ns == NULL);
    CHECK_INT(n->nattrs, 1);
    CHECK_STR(n->attrs[0].name, "k");
    CHECK_STR(n->attrs[0].ns, "urn:p");
    CHECK_STR(n->children[0]->name, "b");
    CHECK_STR(n->children[0]->ns, "urn:p");
    CHECK(n->children[1]->ns == NULL);
    char *out = NULL;
    jj_error err;
    CHECK_INT(jj_xml_emit(n, 0, &out, NULL, &err), 0);
    CHECK_STR(out, "<a xmlns:ns1=\"urn:p\" ns1:k=\"v\"><b xmlns=\"urn:p\"/><c/></a>");
    free(out);
    jj_xml_free(n);
}

static void expect_error(const char *s, const jj_xml_limits *lim, int code, int line, int col,
                         const char *msg_part)
{
    jj_xml_node *n = NULL;
    jj_error err;
    int rc = jj_xml_parse(s, strlen(s), "t.xml", lim, &n, &err);
    CHECK_INT(rc, code);
    CHECK(n == NULL);
    CHECK_STR(err.file, "t.xml");
    if (line)
        CHECK_INT(err.line, line);
    if (col)
        CHECK_INT(err.column, col);
    if (!strstr(err.message, msg_part)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.message, msg_part);
        CHECK(0);
    }
}

static void test_errors(void)
{
    expect_error("<a>\n  <b></a>", NULL, JJ_EINVAL, 2, 8, "mismatched tag");
    expect_error("", NULL, JJ_EINVAL, 1, 1, "no element found");
    expect_error("<a/><b/>", NULL, JJ_EINVAL, 1, 5, "junk after document element");
    expect_error("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", NULL, JJ_EINVAL, 1, 0,
                 "DOCTYPE is not allowed");
    expect_error("<a>&nope;</a>", NULL, JJ_EINVAL, 1, 4, "undefined entity");
    expect_error("<a>\xff</a>", NULL, JJ_EINVAL, 1, 4, "invalid token");
}

static void test_limits(void)
{
    jj_xml_limits lim = {.max_depth = 3};
    expect_error("<a><b><c><d/></c></b></a>", &lim, JJ_EINVAL, 1, 10, "nested too deeply");
    jj_xml_limits lim2 = {.max_elements = 3};
    expect_error("<a><b/><c/><d/></a>", &lim2, JJ_EINVAL, 1, 12, "too many elements");
    jj_xml_limits lim3 = {.max_size = 4};
    expect_error("<abc/>", &lim3, JJ_ERANGE, 0, 0, "larger than the limit of 4");
    /* the default depth (256) holds 256 and refuses 257 */
    char deep[257 * 7 + 1];
    for (int d = 256; d <= 257; d++) {
        size_t p = 0;
        for (int i = 0; i < d; i++)
            p += (size_t)sprintf(deep + p, "<a>");
        for (int i = 0; i < d; i++)
            p += (size_t)sprintf(deep + p, "</a>");
        jj_xml_node *n = NULL;
        jj_error err;
        CHECK_INT(jj_xml_parse(deep, p, NULL, NULL, &n, &err), d == 256 ? 0 : JJ_EINVAL);
        if (d == 257)
            CHECK_STR(err.file, "xml");
        jj_xml_free(n);
    }
}

static void test_writer(void)
{
    jj_xml_node *r = jj_xml_new_element("CreateBucketConfiguration",
                                        "http://s3.amazonaws.com/doc/2006-03-01/");
    jj_xml_node *c = jj_xml_new_element("LocationConstraint", NULL);
    CHECK(r && c);
    CHECK_INT(jj_xml_add_text(c, "a<b>&\"c\"\r\n", 10), 0);
    CHECK_INT(jj_xml_add_attr(c, "q", NULL, "\"x\"&<\t\n"), 0);
    CHECK_INT(jj_xml_add_attr(c, "lang", "http://www.w3.org/XML/1998/namespace", "en"), 0);
    CHECK_INT(jj_xml_add_child(r, c), 0);
    char *out = NULL;
    size_t len = 0;
    jj_error err;
    CHECK_INT(jj_xml_emit(r, 1, &out, &len, &err), 0);
    if (!out)
        return;
    CHECK_STR(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                   "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                   "<LocationConstraint xmlns=\"\" q=\"&quot;x&quot;&amp;&lt;&#9;&#10;\" "
                   "xml:lang=\"en\">a&lt;b&gt;&amp;\"c\"&#13;\n</LocationConstraint>"
                   "</CreateBucketConfiguration>");
    CHECK_INT(len, strlen(out));
    /* what the writer writes reads back the same */
    jj_xml_node *back = NULL;
    CHECK_INT(jj_xml_parse(out, len, NULL, NULL, &back, &err), 0);
    if (back) {
        CHECK_STR(back->children[0]->text, "a<b>&\"c\"\r\n");
        CHECK_STR(back->children[0]->attrs[0].value, "\"x\"&<\t\n");
        CHECK_STR(back->children[0]->attrs[1].ns, "http://www.w3.org/XML/1998/namespace");
    }
    jj_xml_free(back);
    free(out);
    /* control characters and bad UTF-8 are refused, naming the element */
    CHECK_INT(jj_xml_add_text(c, "\x01", 1), 0);
    CHECK_INT(jj_xml_emit(r, 0, &out, NULL, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "<LocationConstraint>") != NULL);
    jj_xml_free(r);
    jj_xml_node *bad = jj_xml_new_element("1x", NULL);
    CHECK_INT(jj_xml_emit(bad, 0, &out, NULL, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "not a valid element name") != NULL);
    jj_xml_free(bad);
    CHECK(jj_xml_new_element("", NULL) == NULL);
}

static void test_escape(void)
{
    char *out = NULL;
    size_t len;
    jj_error err;
    CHECK_INT(jj_xml_escape("<&>\"\xc3\xa9", 6, 0, &out, &len, &err), 0);
    CHECK_STR(out, "&lt;&amp;&gt;\"\xc3\xa9");
    free(out);
    CHECK_INT(jj_xml_escape("\"\t", 2, 1, &out, &len, &err), 0);
    CHECK_STR(out, "&quot;&#9;");
    free(out);
    CHECK_INT(jj_xml_escape("\xc3", 1, 0, &out, &len, &err), JJ_EINVAL);
    CHECK_INT(jj_xml_escape("\xed\xa0\x80", 3, 0, &out, &len, &err), JJ_EINVAL); /* surrogate */
    CHECK_INT(jj_xml_escape("a\0b", 3, 0, &out, &len, &err), JJ_EINVAL);
}

int main(void)
{
    RUN(test_tree_shape);
    RUN(test_namespaced_attrs);
    RUN(test_errors);
    RUN(test_limits);
    RUN(test_writer);
    RUN(test_escape);
    return check_summary();
}
