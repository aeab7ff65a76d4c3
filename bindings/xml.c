/* xml.c (binding): juju.xml, XML text <-> Lua element tables via core/xml.
 *
 *   xml.decode(text [, source [, limits]]) -> element | nil, "source:line:col: msg", code
 *   xml.encode(element [, opts]) -> text | nil, msg, "EINVAL"   (opts.declaration)
 *   xml.escape(s [, attr]) -> escaped string | nil, msg, "EINVAL"
 *
 * An element is a plain table:
 *   { name = "local", ns = "uri" or nil, attrs = { key = value },
 *     children = { element, ... }, text = "direct character data",
 *     line = n, col = n }           -- line/col only on decoded elements
 * Attribute keys are the local name, or "{uri}local" (Clark notation) for a
 * namespaced attribute. The tree pushing is self-contained here (it may move
 * onto a shared tree helper later). The C tree lives in an owned box while
 * Lua values are built, so a Lua error (out of memory) frees it via __gc.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "xml.h"

static void free_tree(void *p, size_t n)
{
    (void)n;
    jj_xml_free(p);
}

static void free_text(void *p, size_t n)
{
    (void)n;
    free(p);
}

static void push_element(lua_State *L, const jj_xml_node *n, int depth)
{
    luaL_checkstack(L, 6, "XML nested too deeply");
    lua_createtable(L, 0, 7);
    lua_pushstring(L, n->name);
    lua_setfield(L, -2, "name");
    if (n->ns) {
        lua_pushstring(L, n->ns);
        lua_setfield(L, -2, "ns");
    }
    lua_createtable(L, 0, (int)n->nattrs);
    for (size_t i = 0; i < n->nattrs; i++) {
        const jj_xml_attr *a = &n->attrs[i];
        if (a->ns)
            lua_pushfstring(L, "{%s}%s", a->ns, a->name);
        else
            lua_pushstring(L, a->name);
        lua_pushstring(L, a->value);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "attrs");
    lua_createtable(L, (int)n->nchildren, 0);
    for (size_t i = 0; i < n->nchildren; i++) {
        push_element(L, n->children[i], depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "children");
    lua_pushlstring(L, n->text, n->text_len);
    lua_setfield(L, -2, "text");
    if (n->line > 0) {
        lua_pushinteger(L, n->line);
        lua_setfield(L, -2, "line");
        lua_pushinteger(L, n->column);
        lua_setfield(L, -2, "col");
    }
}

static size_t opt_size_field(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    lua_Integer v = 0;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 1)
            luaL_error(L, "bad limit '%s' (positive integer expected)", key);
    }
    lua_pop(L, 1);
    return (size_t)v;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, "xml");
    jj_xml_limits lim = {0};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lim.max_size = opt_size_field(L, 3, "max_size");
        size_t d = opt_size_field(L, 3, "max_depth");
        luaL_argcheck(L, d <= 100000, 3, "max_depth too large");
        lim.max_depth = (int)d;
        lim.max_elements = opt_size_field(L, 3, "max_elements");
    }
    jj_owned *box = jj_push_owned(L, free_tree);
    jj_xml_node *root = NULL;
    jj_error err;
    if (jj_xml_parse(text, len, source, &lim, &root, &err) != 0)
        return jj_push_error(L, &err);
    box->p = root;
    push_element(L, root, 1);
    jj_owned_release(box);
    return 1;
}

/* --- encode: Lua element tables -> C tree ------------------------------- */

static const char *opt_string_field(lua_State *L, int t, const char *key, const char *where)
{
    int ty = lua_getfield(L, t, key);
    const char *s = NULL;
    if (ty == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "xml.encode: %s: field '%s' must be a string, got %s", where, key,
                   luaL_typename(L, -1));
    lua_pop(L, 1); /* still referenced by the table */
    return s;
}

static int compare_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills el (already owned by the tree) from the table at t. */
static void fill_element(lua_State *L, int t, jj_xml_node *el, int depth)
{
    t = lua_absindex(L, t);
    if (depth > JJ_XML_DEFAULT_MAX_DEPTH)
        luaL_error(L, "xml.encode: elements nested deeper than %d (or a cycle)",
                   JJ_XML_DEFAULT_MAX_DEPTH);
    luaL_checkstack(L, 8, "XML nested too deeply");
    const char *text = NULL;
    size_t text_len = 0;
    if (lua_getfield(L, t, "text") == LUA_TSTRING)
        text = lua_tolstring(L, -1, &text_len);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "xml.encode: <%s>: field 'text' must be a string", el->name);
    lua_pop(L, 1);
    if (text && jj_xml_add_text(el, text, text_len) != 0)
        luaL_error(L, "xml.encode: out of memory");
    int ty = lua_getfield(L, t, "attrs");
    if (ty == LUA_TTABLE) {
        int a = lua_gettop(L);
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) {
            lua_pop(L, 1);
            n++;
        }
        const char **keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
        size_t i = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "xml.encode: <%s>: attrs must map strings to strings", el->name);
            keys[i++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        qsort(keys, n, sizeof *keys, compare_cstr);
        for (i = 0; i < n; i++) {
            const char *k = keys[i];
            lua_getfield(L, a, k);
            const char *v = lua_tostring(L, -1);
            int rc;
            if (k[0] == '{' && strchr(k, '}')) {
                const char *close = strchr(k, '}');
                lua_pushlstring(L, k + 1, (size_t)(close - k - 1));
                rc = jj_xml_add_attr(el, close + 1, lua_tostring(L, -1), v);
                lua_pop(L, 1);
            } else {
                rc = jj_xml_add_attr(el, k, NULL, v);
            }
            lua_pop(L, 1);
            if (rc != 0)
                luaL_error(L, "xml.encode: out of memory");
        }
        lua_pop(L, 1); /* keys */
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "xml.encode: <%s>: field 'attrs' must be a table", el->name);
    }
    lua_pop(L, 1);
    ty = lua_getfield(L, t, "children");
    if (ty == LUA_TTABLE) {
        int c = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, c);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, c, i) != LUA_TTABLE)
                luaL_error(L, "xml.encode: <%s>: children[%d] must be an element table", el->name,
                           (int)i);
            const char *where = el->name;
            const char *name = opt_string_field(L, -1, "name", where);
            const char *ns = opt_string_field(L, -1, "ns", where);
            if (!name)
                luaL_error(L, "xml.encode: <%s>: children[%d] has no name", el->name, (int)i);
            jj_xml_node *child = jj_xml_new_element(name, ns);
            if (!child || jj_xml_add_child(el, child) != 0)
                luaL_error(L, "xml.encode: out of memory");
            fill_element(L, -1, child, depth + 1);
            lua_pop(L, 1);
        }
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "xml.encode: <%s>: field 'children' must be a table", el->name);
    }
    lua_pop(L, 1);
}

static int l_encode(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int declaration = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "declaration");
        declaration = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    const char *name = opt_string_field(L, 1, "name", "root");
    const char *ns = opt_string_field(L, 1, "ns", "root");
    if (!name)
        luaL_argerror(L, 1, "element table with a 'name' expected");
    jj_owned *box = jj_push_owned(L, free_tree);
    box->p = jj_xml_new_element(name, ns);
    if (!box->p)
        return luaL_error(L, "xml.encode: out of memory");
    fill_element(L, 1, box->p, 1);
    jj_owned *tbox = jj_push_owned(L, free_text);
    char *out = NULL;
    size_t len = 0;
    jj_error err;
    if (jj_xml_emit(box->p, declaration, &out, &len, &err) != 0)
        return jj_push_error(L, &err);
    tbox->p = out;
    jj_owned_release(box);
    lua_pushlstring(L, out, len);
    jj_owned_release(tbox);
    return 1;
}

static int l_escape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int attr = lua_toboolean(L, 2);
    jj_owned *tbox = jj_push_owned(L, free_text);
    char *out = NULL;
    size_t out_len = 0;
    jj_error err;
    if (jj_xml_escape(s, len, attr, &out, &out_len, &err) != 0)
        return jj_push_error(L, &err);
    tbox->p = out;
    lua_pushlstring(L, out, out_len);
    jj_owned_release(tbox);
    return 1;
}

int luaopen_juju_xml(lua_State *L);
int luaopen_juju_xml(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"decode", l_decode}, {"encode", l_encode}, {"escape", l_escape}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
