/*
 * asyncspark._speedups: the engine's per-record loops in C (narrow transformations, shuffle).
 *
 * Each function here has a pure-Python twin in asyncspark/_accel.py with the same
 * signature and the same observable behaviour (results, the order user functions are
 * called in, error types and messages); tests/unit/test_accel.py runs both against each
 * other. The extension is optional: when it was not built, the twins are used.
 *
 * Every loop handles at most `limit` records and returns, so that the Python caller can
 * check its memory budget (and flush buffers) between batches.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* merge_into modes: how a combiner is made from a value and merged with the next one */
enum { MODE_CALL = 0, MODE_ADD = 1, MODE_LIST = 2, MODE_CELLS = 4 };

/* Unpack a record into (key, value) as `k, v = item` does; new references. */
static int
unpack2(PyObject *item, PyObject **k, PyObject **v)
{
    Py_ssize_t n;
    if (PyTuple_CheckExact(item)) {
        n = PyTuple_GET_SIZE(item);
        if (n == 2) {
            *k = Py_NewRef(PyTuple_GET_ITEM(item, 0));
            *v = Py_NewRef(PyTuple_GET_ITEM(item, 1));
            return 0;
        }
    }
    else if (PyList_CheckExact(item)) {
        n = PyList_GET_SIZE(item);
        if (n == 2) {
            *k = Py_NewRef(PyList_GET_ITEM(item, 0));
            *v = Py_NewRef(PyList_GET_ITEM(item, 1));
            return 0;
        }
    }
    else {
        if (Py_TYPE(item)->tp_iter == NULL && !PySequence_Check(item)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(item)->tp_name);
            return -1;
        }
        PyObject *it = PyObject_GetIter(item);
        if (it == NULL)
            return -1;
        PyObject *got[3] = {NULL, NULL, NULL};
        for (n = 0; n < 3; n++) {
            got[n] = PyIter_Next(it);
            if (got[n] == NULL)
                break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            for (Py_ssize_t i = 0; i < n; i++)
                Py_DECREF(got[i]);
            return -1;
        }
        if (n == 2) {
            *k = got[0];
            *v = got[1];
            return 0;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            Py_DECREF(got[i]);
    }
    if (n < 2)
        PyErr_Format(PyExc_ValueError,
                     "not enough values to unpack (expected 2, got %zd)", n);
    else
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
    return -1;
}

/* The key of a record, as `kv[0]` gives it; a new reference. */
static PyObject *
first_item(PyObject *kv)
{
    if (PyTuple_CheckExact(kv) && PyTuple_GET_SIZE(kv) > 0)
        return Py_NewRef(PyTuple_GET_ITEM(kv, 0));
    if (PyList_CheckExact(kv) && PyList_GET_SIZE(kv) > 0)
        return Py_NewRef(PyList_GET_ITEM(kv, 0));
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL)
        return NULL;
    PyObject *k = PyObject_GetItem(kv, zero); /* whatever kv[0] means for its type */
    Py_DECREF(zero);
    return k;
}

static int
check_args(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name,
                     expected, nargs);
        return -1;
    }
    return 0;
}

static int
get_limit(PyObject *arg, Py_ssize_t *limit)
{
    *limit = PyLong_AsSsize_t(arg);
    if (*limit == -1 && PyErr_Occurred())
        return -1;
    if (*limit < 1) {
        PyErr_Format(PyExc_ValueError, "limit must be at least 1, got %zd", *limit);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(merge_into_doc,
"merge_into(d, it, create, merge, limit, mode) -> (n, last_key)\n\n"
"Merge up to `limit` (key, value) records of iterator `it` into dict `d`: a new key gets\n"
"`create(v)` (`v` itself when `create` is None), a known one `merge(d[k], v)`. Modes:\n"
"0 calls the functions; 1 merges with `+` (create must be None); 2 makes `[v]` and\n"
"appends; 0 or 1 plus 4 (cells) keep each combiner in a one-item list, replaced in\n"
"place. `n` < `limit` means `it` is exhausted; `last_key` is the key of the last\n"
"record merged (None if none was).");

static PyObject *
merge_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("merge_into", nargs, 6) < 0)
        return NULL;
    PyObject *d = args[0], *it = args[1], *create = args[2], *merge = args[3];
    Py_ssize_t limit;
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "merge_into() needs a dict");
        return NULL;
    }
    if (!PyIter_Check(it)) {
        PyErr_SetString(PyExc_TypeError, "merge_into() needs an iterator");
        return NULL;
    }
    if (get_limit(args[4], &limit) < 0)
        return NULL;
    long mode = PyLong_AsLong(args[5]);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    int cells = (mode & MODE_CELLS) != 0;
    mode &= ~MODE_CELLS;
    if (mode < MODE_CALL || mode > MODE_LIST || (cells && mode == MODE_LIST)) {
        PyErr_Format(PyExc_ValueError, "unknown merge mode %ld",
                     mode | (cells ? MODE_CELLS : 0));
        return NULL;
    }
    PyObject *last = Py_NewRef(Py_None);
    Py_ssize_t n = 0;
    while (n < limit) {
        PyObject *item = PyIter_Next(it);
        if (item == NULL) {
            if (PyErr_Occurred())
                goto error;
            break;
        }
        PyObject *k, *v;
        int r = unpack2(item, &k, &v);
        Py_DECREF(item);
        if (r < 0)
            goto error;
        n++;
        PyObject *c = PyDict_GetItemWithError(d, k); /* borrowed */
        PyObject *nc = NULL;
        if (c != NULL && cells) {
            /* The combiner lives in a one-item list: replaced in place, no second
               lookup of the key to store it. */
            if (!PyList_CheckExact(c) || PyList_GET_SIZE(c) != 1) {
                PyErr_SetString(PyExc_TypeError, "merge_into(): a cell is not a 1-item list");
                Py_DECREF(k);
                Py_DECREF(v);
                goto error;
            }
            Py_INCREF(c);
            PyObject *old = PyList_GET_ITEM(c, 0);
            if (mode == MODE_ADD) {
                nc = PyNumber_Add(old, v);
            }
            else {
                PyObject *a[2] = {old, v};
                Py_INCREF(old);
                nc = PyObject_Vectorcall(merge, a, 2, NULL);
                Py_DECREF(old);
            }
            Py_DECREF(v);
            if (nc == NULL) {
                Py_DECREF(c);
                Py_DECREF(k);
                goto error;
            }
            old = PyList_GET_ITEM(c, 0);
            PyList_SET_ITEM(c, 0, nc);
            Py_DECREF(old);
            Py_DECREF(c);
            Py_SETREF(last, k);
            continue;
        }
        if (c != NULL) {
            if (mode == MODE_ADD) {
                nc = PyNumber_Add(c, v);
            }
            else if (mode == MODE_LIST && PyList_CheckExact(c)) {
                /* The list stays the combiner: nothing to store. */
                r = PyList_Append(c, v);
                Py_DECREF(v);
                Py_SETREF(last, k);
                if (r < 0)
                    goto error;
                continue;
            }
            else {
                Py_INCREF(c);
                PyObject *a[2] = {c, v};
                nc = PyObject_Vectorcall(merge, a, 2, NULL);
                Py_DECREF(c);
            }
        }
        else if (!PyErr_Occurred()) {
            if (mode == MODE_LIST) {
                nc = PyList_New(1);
                if (nc != NULL)
                    PyList_SET_ITEM(nc, 0, Py_NewRef(v));
            }
            else if (create == Py_None) {
                nc = Py_NewRef(v);
            }
            else {
                nc = PyObject_CallOneArg(create, v);
            }
        }
        Py_DECREF(v);
        if (nc != NULL && cells) {
            PyObject *cell = PyList_New(1);
            if (cell == NULL)
                Py_CLEAR(nc);
            else {
                PyList_SET_ITEM(cell, 0, nc);
                nc = cell;
            }
        }
        if (nc == NULL) {
            Py_DECREF(k);
            goto error;
        }
        r = PyDict_SetItem(d, k, nc);
        Py_DECREF(nc);
        Py_SETREF(last, k);
        if (r < 0)
            goto error;
    }
    return Py_BuildValue("(nN)", n, last);
error:
    Py_DECREF(last);
    return NULL;
}

static int
bad_partition(PyObject *key, Py_ssize_t p, Py_ssize_t nparts)
{
    PyErr_Format(PyExc_ValueError,
                 "the partitioner put key %.200R in partition %zd: not in [0, %zd)",
                 key, p, nparts);
    return -1;
}

/* Partition of `key` by calling `get_partition`; -1 with an exception on failure. */
static Py_ssize_t
call_partition(PyObject *get_partition, PyObject *key, Py_ssize_t nparts)
{
    PyObject *r = PyObject_CallOneArg(get_partition, key);
    if (r == NULL)
        return -1;
    Py_ssize_t p = PyNumber_AsSsize_t(r, PyExc_OverflowError);
    Py_DECREF(r);
    if (p == -1 && PyErr_Occurred())
        return -1;
    if (p < 0 || p >= nparts)
        return bad_partition(key, p, nparts);
    return p;
}

/* Partition of `key`: with `fast`, a str or int key's partition is its hash modulo
   `nparts` (what portable_hash and HashPartitioner give for those types), without
   calling `get_partition`; -1 with an exception on failure. */
static Py_ssize_t
key_partition(PyObject *get_partition, PyObject *key, Py_ssize_t nparts, int fast)
{
    if (fast && (PyUnicode_CheckExact(key) || PyLong_CheckExact(key))) {
        Py_hash_t h = PyObject_Hash(key);
        if (h == -1 && PyErr_Occurred())
            return -1;
        Py_ssize_t p = (Py_ssize_t)(h % nparts);
        return p < 0 ? p + nparts : p;
    }
    return call_partition(get_partition, key, nparts);
}

static int
check_buckets(PyObject *buckets, Py_ssize_t *nparts)
{
    if (!PyList_CheckExact(buckets) || PyList_GET_SIZE(buckets) == 0) {
        PyErr_SetString(PyExc_TypeError, "buckets must be a non-empty list of lists");
        return -1;
    }
    *nparts = PyList_GET_SIZE(buckets);
    for (Py_ssize_t i = 0; i < *nparts; i++) {
        if (!PyList_CheckExact(PyList_GET_ITEM(buckets, i))) {
            PyErr_SetString(PyExc_TypeError, "buckets must be a non-empty list of lists");
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(bucket_hash_doc,
"bucket_hash(it, buckets, fast, get_partition, limit) -> n\n\n"
"Append up to `limit` records of iterator `it` to `buckets[p]`, p being the partition\n"
"of the record's key `kv[0]`: `hash(key) % len(buckets)` for str and int keys when\n"
"`fast` is true, else `get_partition(key)` (which must be in range). Returns the\n"
"number of records taken; fewer than `limit` means `it` is exhausted.");

static PyObject *
bucket_hash(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("bucket_hash", nargs, 5) < 0)
        return NULL;
    PyObject *it = args[0], *buckets = args[1], *get_partition = args[3];
    Py_ssize_t nparts, limit, n = 0;
    int fast = PyObject_IsTrue(args[2]);
    if (fast < 0 || check_buckets(buckets, &nparts) < 0 || get_limit(args[4], &limit) < 0)
        return NULL;
    if (!PyIter_Check(it)) {
        PyErr_SetString(PyExc_TypeError, "bucket_hash() needs an iterator");
        return NULL;
    }
    while (n < limit) {
        PyObject *kv = PyIter_Next(it);
        if (kv == NULL) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        PyObject *k = first_item(kv);
        if (k == NULL) {
            Py_DECREF(kv);
            return NULL;
        }
        Py_ssize_t p = key_partition(get_partition, k, nparts, fast);
        Py_DECREF(k);
        if (p < 0 || PyList_Append(PyList_GET_ITEM(buckets, p), kv) < 0) {
            Py_DECREF(kv);
            return NULL;
        }
        Py_DECREF(kv);
        n++;
    }
    return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(bucket_range_doc,
"bucket_range(it, buckets, bounds, ascending, limit) -> n\n\n"
"As bucket_hash, for a range partitioner with the identity key function: a key goes to\n"
"`bisect_left(bounds, key)` (mirrored when not `ascending`).");

/* Bounds as C integers when all of them are exact ints that fit: keys that are exact ints
   then bisect without a rich comparison. NULL (no error) otherwise. */
static long long *
int_bounds(PyObject *bounds)
{
    Py_ssize_t n = PyList_GET_SIZE(bounds);
    long long *cb = PyMem_Malloc(sizeof(long long) * (n ? n : 1));
    if (cb == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyList_GET_ITEM(bounds, i);
        int overflow = 0;
        if (!PyLong_CheckExact(b)
                || ((cb[i] = PyLong_AsLongLongAndOverflow(b, &overflow)) == -1
                    && (overflow || PyErr_Occurred()))) {
            PyErr_Clear();
            PyMem_Free(cb);
            return NULL;
        }
    }
    return cb;
}

/* bisect_left(bounds, k) for an exact int k over C bounds; -1 if k does not fit. */
static Py_ssize_t
int_bisect(const long long *cb, Py_ssize_t n, PyObject *k)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(k, &overflow);
    if (overflow)
        return overflow > 0 ? n : 0;
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = ((size_t)lo + hi) / 2;
        if (cb[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static PyObject *
bucket_range(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("bucket_range", nargs, 5) < 0)
        return NULL;
    PyObject *it = args[0], *buckets = args[1], *bounds = args[2];
    Py_ssize_t nparts, limit, n = 0;
    int ascending = PyObject_IsTrue(args[3]);
    if (ascending < 0 || check_buckets(buckets, &nparts) < 0
            || get_limit(args[4], &limit) < 0)
        return NULL;
    if (!PyList_CheckExact(bounds)) {
        PyErr_SetString(PyExc_TypeError, "bounds must be a list");
        return NULL;
    }
    if (!PyIter_Check(it)) {
        PyErr_SetString(PyExc_TypeError, "bucket_range() needs an iterator");
        return NULL;
    }
    Py_ssize_t nbounds = PyList_GET_SIZE(bounds);
    long long *cb = int_bounds(bounds);
    PyObject *result = NULL;
    while (n < limit) {
        PyObject *kv = PyIter_Next(it);
        if (kv == NULL) {
            if (PyErr_Occurred())
                goto done;
            break;
        }
        PyObject *k = first_item(kv);
        if (k == NULL) {
            Py_DECREF(kv);
            goto done;
        }
        Py_ssize_t lo = -1;
        int failed = 0;
        if (cb != NULL && PyLong_CheckExact(k))
            lo = int_bisect(cb, nbounds, k);
        if (lo < 0) {
            /* bisect_left with rich comparisons; they can run user code, so the list's
               size is checked at each step */
            Py_ssize_t hi = PyList_GET_SIZE(bounds);
            lo = 0;
            while (lo < hi) {
                Py_ssize_t mid = ((size_t)lo + hi) / 2;
                if (mid >= PyList_GET_SIZE(bounds)) {
                    PyErr_SetString(PyExc_RuntimeError,
                                    "range bounds changed during bucketing");
                    failed = 1;
                    break;
                }
                PyObject *b = Py_NewRef(PyList_GET_ITEM(bounds, mid));
                int lt = PyObject_RichCompareBool(b, k, Py_LT);
                Py_DECREF(b);
                if (lt < 0) {
                    failed = 1;
                    break;
                }
                if (lt)
                    lo = mid + 1;
                else
                    hi = mid;
            }
        }
        Py_ssize_t p = ascending ? lo : nparts - 1 - lo;
        if (!failed && (p < 0 || p >= nparts))
            failed = bad_partition(k, p, nparts);
        Py_DECREF(k);
        if (failed || PyList_Append(PyList_GET_ITEM(buckets, p), kv) < 0) {
            Py_DECREF(kv);
            goto done;
        }
        Py_DECREF(kv);
        n++;
    }
    result = PyLong_FromSsize_t(n);
done:
    PyMem_Free(cb);
    return result;
}

/* ---- Pipe: the per-element iterators of the narrow transformations ------------------
 *
 * map, flatMap, filter, keyBy, mapValues and flatMapValues as one iterator type, as the
 * generators of asyncspark/_accel.py do: a StopIteration raised by the user's function
 * becomes a RuntimeError (it would otherwise end the iteration and silently drop the rest
 * of the partition, PySpark's SPARK-23754), raised from it.
 */

enum { PIPE_MAP, PIPE_FLAT_MAP, PIPE_FILTER, PIPE_KEY_BY, PIPE_MAP_VALUES,
       PIPE_FLAT_MAP_VALUES, PIPE_KINDS };

static const char STOP_ITERATION_MSG[] =
    "Caught StopIteration thrown from user's code; failing the task";

typedef struct {
    PyObject_HEAD
    int kind;
    PyObject *func;
    PyObject *src;  /* NULL once exhausted or failed */
    PyObject *cur;  /* flat kinds: the iterator of the current element's results */
    PyObject *key;  /* flatMapValues: the current element's key */
} PipeObject;

/* After a failed call of the user's function: StopIteration -> RuntimeError. */
static void
convert_stop_iteration(void)
{
    if (!PyErr_ExceptionMatches(PyExc_StopIteration))
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *msg = PyUnicode_FromString(STOP_ITERATION_MSG);
    PyObject *exc = msg == NULL ? NULL : PyObject_CallOneArg(PyExc_RuntimeError, msg);
    Py_XDECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (exc == NULL) {
        Py_XDECREF(value);
        return;
    }
    /* raise RuntimeError(...) from exc */
    if (value != NULL) {
        Py_INCREF(value);
        PyException_SetContext(exc, value);
        PyException_SetCause(exc, value); /* steals; sets __suppress_context__ */
    }
    PyErr_SetObject(PyExc_RuntimeError, exc);
    Py_DECREF(exc);
}

static PyObject *
pipe_fail(PipeObject *p)
{
    Py_CLEAR(p->src);
    Py_CLEAR(p->cur);
    Py_CLEAR(p->key);
    return NULL;
}

static PyObject *
pipe_next(PipeObject *p)
{
    for (;;) {
        if (p->cur != NULL) {
            PyObject *x = PyIter_Next(p->cur);
            if (x != NULL) {
                if (p->kind == PIPE_FLAT_MAP)
                    return x;
                PyObject *kv = PyTuple_New(2);
                if (kv == NULL) {
                    Py_DECREF(x);
                    return pipe_fail(p);
                }
                PyTuple_SET_ITEM(kv, 0, Py_NewRef(p->key));
                PyTuple_SET_ITEM(kv, 1, x);
                return kv;
            }
            if (PyErr_Occurred())
                return pipe_fail(p);
            Py_CLEAR(p->cur);
            Py_CLEAR(p->key);
        }
        if (p->src == NULL)
            return NULL;
        PyObject *x = PyIter_Next(p->src);
        if (x == NULL) {
            if (PyErr_Occurred())
                return pipe_fail(p);
            Py_CLEAR(p->src);
            return NULL;
        }
        PyObject *r, *k = NULL, *v = NULL;
        switch (p->kind) {
        case PIPE_MAP:
            r = PyObject_CallOneArg(p->func, x);
            Py_DECREF(x);
            if (r == NULL)
                break;
            return r;
        case PIPE_FILTER: {
            r = PyObject_CallOneArg(p->func, x);
            if (r == NULL) {
                Py_DECREF(x);
                break;
            }
            int keep = PyObject_IsTrue(r);
            Py_DECREF(r);
            if (keep > 0)
                return x;
            Py_DECREF(x);
            if (keep < 0)
                return pipe_fail(p);
            continue;
        }
        case PIPE_KEY_BY:
            r = PyObject_CallOneArg(p->func, x);
            if (r == NULL) {
                Py_DECREF(x);
                break;
            }
            {
                PyObject *kv = PyTuple_New(2);
                if (kv == NULL) {
                    Py_DECREF(r);
                    Py_DECREF(x);
                    return pipe_fail(p);
                }
                PyTuple_SET_ITEM(kv, 0, r);
                PyTuple_SET_ITEM(kv, 1, x);
                return kv;
            }
        case PIPE_MAP_VALUES:
        case PIPE_FLAT_MAP_VALUES:
            if (unpack2(x, &k, &v) < 0) {
                Py_DECREF(x);
                return pipe_fail(p);
            }
            Py_DECREF(x);
            r = PyObject_CallOneArg(p->func, v);
            Py_DECREF(v);
            if (r == NULL) {
                Py_DECREF(k);
                break;
            }
            if (p->kind == PIPE_MAP_VALUES) {
                PyObject *kv = PyTuple_New(2);
                if (kv == NULL) {
                    Py_DECREF(k);
                    Py_DECREF(r);
                    return pipe_fail(p);
                }
                PyTuple_SET_ITEM(kv, 0, k);
                PyTuple_SET_ITEM(kv, 1, r);
                return kv;
            }
            p->cur = PyObject_GetIter(r);
            Py_DECREF(r);
            if (p->cur == NULL) {
                Py_DECREF(k);
                return pipe_fail(p);
            }
            p->key = k;
            continue;
        default: /* PIPE_FLAT_MAP */
            r = PyObject_CallOneArg(p->func, x);
            Py_DECREF(x);
            if (r == NULL)
                break;
            p->cur = PyObject_GetIter(r);
            Py_DECREF(r);
            if (p->cur == NULL)
                return pipe_fail(p);
            continue;
        }
        /* the user's function raised */
        convert_stop_iteration();
        return pipe_fail(p);
    }
}

static int
pipe_traverse(PipeObject *p, visitproc visit, void *arg)
{
    Py_VISIT(p->func);
    Py_VISIT(p->src);
    Py_VISIT(p->cur);
    Py_VISIT(p->key);
    return 0;
}

static int
pipe_clear(PipeObject *p)
{
    Py_CLEAR(p->func);
    Py_CLEAR(p->src);
    Py_CLEAR(p->cur);
    Py_CLEAR(p->key);
    return 0;
}

static void
pipe_dealloc(PipeObject *p)
{
    PyObject_GC_UnTrack(p);
    pipe_clear(p);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyTypeObject PipeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncspark._speedups.Pipe",
    .tp_basicsize = sizeof(PipeObject),
    .tp_dealloc = (destructor)pipe_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Per-element iterator of a narrow transformation (see pipe()).",
    .tp_traverse = (traverseproc)pipe_traverse,
    .tp_clear = (inquiry)pipe_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)pipe_next,
};

PyDoc_STRVAR(pipe_doc,
"pipe(kind, f, iterable) -> iterator\n\n"
"The elements of `iterable` through `f` as transformation `kind` does: 0 map, 1 flatMap,\n"
"2 filter, 3 keyBy, 4 mapValues, 5 flatMapValues. A StopIteration raised by `f` becomes\n"
"a RuntimeError.");

static PyObject *
pipe_new(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("pipe", nargs, 3) < 0)
        return NULL;
    long kind = PyLong_AsLong(args[0]);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    if (kind < 0 || kind >= PIPE_KINDS) {
        PyErr_Format(PyExc_ValueError, "unknown pipe kind %ld", kind);
        return NULL;
    }
    PyObject *src = PyObject_GetIter(args[2]);
    if (src == NULL)
        return NULL;
    PipeObject *p = PyObject_GC_New(PipeObject, &PipeType);
    if (p == NULL) {
        Py_DECREF(src);
        return NULL;
    }
    p->kind = (int)kind;
    p->func = Py_NewRef(args[1]);
    p->src = src;
    p->cur = NULL;
    p->key = NULL;
    PyObject_GC_Track(p);
    return (PyObject *)p;
}

PyDoc_STRVAR(count_doc,
"count(iterable) -> int\n\nThe number of elements `iterable` yields (consuming it).");

static PyObject *
count(PyObject *self, PyObject *iterable)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL)
        return NULL;
    iternextfunc next = Py_TYPE(it)->tp_iternext;
    Py_ssize_t n = 0;
    PyObject *x;
    while ((x = next(it)) != NULL) {
        Py_DECREF(x);
        n++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_StopIteration))
            return NULL;
        PyErr_Clear();
    }
    return PyLong_FromSsize_t(n);
}

/* ---- sort_int_keys: stable LSD radix sort of records by exact-int keys -------------- */

typedef struct {
    unsigned long long key;
    Py_ssize_t index;
} KeyIndex;

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)

PyDoc_STRVAR(sort_int_keys_doc,
"sort_int_keys(records, reverse) -> bool\n\n"
"Sort the list `records` in place by `record[0]` as `records.sort(key=itemgetter(0),\n"
"reverse=reverse)` would (stable), when every record is a tuple or list whose first\n"
"item is an exact int that fits in 64 bits: a radix sort, no comparisons. Returns\n"
"False, leaving the list untouched, when some record is not so.");

static PyObject *
sort_int_keys(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("sort_int_keys", nargs, 2) < 0)
        return NULL;
    PyObject *list = args[0];
    if (!PyList_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "sort_int_keys() needs a list");
        return NULL;
    }
    int reverse = PyObject_IsTrue(args[1]);
    if (reverse < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n < 2)
        Py_RETURN_TRUE;
    KeyIndex *a = PyMem_Malloc(sizeof(KeyIndex) * n);
    KeyIndex *b = PyMem_Malloc(sizeof(KeyIndex) * n);
    Py_ssize_t *count = PyMem_Malloc(sizeof(Py_ssize_t) * RADIX_SIZE);
    PyObject **items = PyMem_Malloc(sizeof(PyObject *) * n);
    if (a == NULL || b == NULL || count == NULL || items == NULL) {
        PyMem_Free(a);
        PyMem_Free(b);
        PyMem_Free(count);
        PyMem_Free(items);
        return PyErr_NoMemory();
    }
    PyObject *result = Py_False;
    unsigned long long all_or = 0, all_and = ~0ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(list, i), *k;
        if (PyTuple_CheckExact(r) && PyTuple_GET_SIZE(r) > 0)
            k = PyTuple_GET_ITEM(r, 0);
        else if (PyList_CheckExact(r) && PyList_GET_SIZE(r) > 0)
            k = PyList_GET_ITEM(r, 0);
        else
            goto done;
        if (!PyLong_CheckExact(k))
            goto done;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(k, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            goto done;
        }
        /* order-preserving map to unsigned; complemented for a descending sort, which
           keeps equal keys in their original order, as list.sort(reverse=True) does */
        unsigned long long u = (unsigned long long)v ^ 0x8000000000000000ULL;
        if (reverse)
            u = ~u;
        a[i].key = u;
        a[i].index = i;
        all_or |= u;
        all_and &= u;
    }
    /* digits that are the same in every key need no pass */
    unsigned long long varying = all_or ^ all_and;
    for (int shift = 0; shift < 64; shift += RADIX_BITS) {
        unsigned long long mask = (unsigned long long)(RADIX_SIZE - 1) << shift;
        if (!(varying & mask))
            continue;
        memset(count, 0, sizeof(Py_ssize_t) * RADIX_SIZE);
        for (Py_ssize_t i = 0; i < n; i++)
            count[(a[i].key >> shift) & (RADIX_SIZE - 1)]++;
        Py_ssize_t total = 0;
        for (int d = 0; d < RADIX_SIZE; d++) {
            Py_ssize_t c = count[d];
            count[d] = total;
            total += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            b[count[(a[i].key >> shift) & (RADIX_SIZE - 1)]++] = a[i];
        KeyIndex *t = a;
        a = b;
        b = t;
    }
    /* a permutation of the same objects: no reference counts change */
    for (Py_ssize_t i = 0; i < n; i++)
        items[i] = PyList_GET_ITEM(list, a[i].index);
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(list, i, items[i]);
    result = Py_True;
done:
    PyMem_Free(a);
    PyMem_Free(b);
    PyMem_Free(count);
    PyMem_Free(items);
    return Py_NewRef(result);
}


/* ---- sorted_int_pairs, sort_marshaled_pairs: a shuffle partition's pairs, sorted -----
 *
 * sortByKey's reduce side receives its records as batches (lists of (key, value) tuples,
 * allocated in arrival order, or the marshaled bytes of such lists). Sorting those
 * objects and handing them on makes every later touch of a record (its free, above all)
 * a cache miss in random order: on 625k records that costs more than decoding and
 * sorting together. Instead the keys are copied out as C integers with the values (their
 * references, or for None, bools, ints and floats of marshaled bytes the values
 * themselves), the (key, value) array is radix-sorted and the iterator makes each
 * (key, value) tuple when asked: allocated, used and freed in order, one at a time.
 */

enum { VAL_OBJ, VAL_INT, VAL_FLOAT };

typedef struct {
    unsigned long long key;  /* order-preserving (complemented when reverse) */
    union {
        PyObject *obj;  /* VAL_OBJ: a reference the array owns */
        long long i;
        double f;
    } v;
    int tag;
} KeyValue;

typedef struct {
    PyObject_HEAD
    KeyValue *kv;
    Py_ssize_t pos, n;
    int reverse;
} SortedPairsObject;

static void
kv_release(KeyValue *kv, Py_ssize_t from, Py_ssize_t n)
{
    for (Py_ssize_t i = from; i < n; i++)
        if (kv[i].tag == VAL_OBJ)
            Py_DECREF(kv[i].v.obj);
    PyMem_Free(kv);
}

static void
sorted_pairs_release(SortedPairsObject *s)
{
    if (s->kv != NULL) {
        KeyValue *kv = s->kv;
        s->kv = NULL;
        kv_release(kv, s->pos, s->n);
    }
    s->pos = s->n = 0;
}

static int
sorted_pairs_traverse(SortedPairsObject *s, visitproc visit, void *arg)
{
    if (s->kv != NULL)
        for (Py_ssize_t i = s->pos; i < s->n; i++)
            if (s->kv[i].tag == VAL_OBJ)
                Py_VISIT(s->kv[i].v.obj);
    return 0;
}

static int
sorted_pairs_clear(SortedPairsObject *s)
{
    sorted_pairs_release(s);
    return 0;
}

static void
sorted_pairs_dealloc(SortedPairsObject *s)
{
    PyObject_GC_UnTrack(s);
    sorted_pairs_release(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *
sorted_pairs_next(SortedPairsObject *s)
{
    if (s->kv == NULL || s->pos >= s->n) {
        sorted_pairs_release(s);
        return NULL;
    }
    KeyValue *e = &s->kv[s->pos];
    unsigned long long u = s->reverse ? ~e->key : e->key;
    PyObject *k = PyLong_FromLongLong((long long)(u ^ 0x8000000000000000ULL));
    if (k == NULL)
        return NULL;
    PyObject *v;
    if (e->tag == VAL_INT)
        v = PyLong_FromLongLong(e->v.i);
    else if (e->tag == VAL_FLOAT)
        v = PyFloat_FromDouble(e->v.f);
    else
        v = e->v.obj; /* the array's reference moves into the tuple */
    if (v == NULL) {
        Py_DECREF(k);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(k);
        if (e->tag != VAL_OBJ)
            Py_DECREF(v);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, k);
    PyTuple_SET_ITEM(t, 1, v);
    s->pos++;
    return t;
}

static PyObject *
sorted_pairs_length_hint(SortedPairsObject *s, PyObject *unused)
{
    return PyLong_FromSsize_t(s->kv == NULL ? 0 : s->n - s->pos);
}

static PyMethodDef sorted_pairs_methods[] = {
    {"__length_hint__", (PyCFunction)sorted_pairs_length_hint, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SortedPairsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncspark._speedups.SortedPairs",
    .tp_basicsize = sizeof(SortedPairsObject),
    .tp_dealloc = (destructor)sorted_pairs_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Iterator over sorted (key, value) pairs (see sorted_int_pairs()).",
    .tp_traverse = (traverseproc)sorted_pairs_traverse,
    .tp_clear = (inquiry)sorted_pairs_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)sorted_pairs_next,
    .tp_methods = sorted_pairs_methods,
};

/* Radix-sort a[0:n] by key (stable) and wrap it in an iterator, which owns it. */
static PyObject *
sorted_pairs_make(KeyValue *a, Py_ssize_t n, unsigned long long varying, int reverse)
{
    KeyValue *tmp = n > 1 ? PyMem_Malloc(sizeof(KeyValue) * n) : NULL;
    Py_ssize_t *count = PyMem_Malloc(sizeof(Py_ssize_t) * RADIX_SIZE);
    if ((n > 1 && tmp == NULL) || count == NULL) {
        PyMem_Free(tmp);
        PyMem_Free(count);
        kv_release(a, 0, n);
        return PyErr_NoMemory();
    }
    for (int shift = 0; shift < 64 && n > 1; shift += RADIX_BITS) {
        unsigned long long mask = (unsigned long long)(RADIX_SIZE - 1) << shift;
        if (!(varying & mask))
            continue;
        memset(count, 0, sizeof(Py_ssize_t) * RADIX_SIZE);
        for (Py_ssize_t i = 0; i < n; i++)
            count[(a[i].key >> shift) & (RADIX_SIZE - 1)]++;
        Py_ssize_t total = 0;
        for (int d = 0; d < RADIX_SIZE; d++) {
            Py_ssize_t c = count[d];
            count[d] = total;
            total += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            tmp[count[(a[i].key >> shift) & (RADIX_SIZE - 1)]++] = a[i];
        KeyValue *t = a;
        a = tmp;
        tmp = t;
    }
    PyMem_Free(tmp);
    PyMem_Free(count);
    SortedPairsObject *s = PyObject_GC_New(SortedPairsObject, &SortedPairsType);
    if (s == NULL) {
        kv_release(a, 0, n);
        return NULL;
    }
    s->kv = a;
    s->pos = 0;
    s->n = n;
    s->reverse = reverse;
    PyObject_GC_Track(s);
    return (PyObject *)s;
}

static unsigned long long
order_key(long long v, int reverse)
{
    unsigned long long u = (unsigned long long)v ^ 0x8000000000000000ULL;
    return reverse ? ~u : u;
}

PyDoc_STRVAR(sorted_int_pairs_doc,
"sorted_int_pairs(batches, reverse) -> iterator or None\n\n"
"When every record of the lists in the list `batches` is a 2-tuple whose key is an exact\n"
"int that fits in 64 bits: empty the lists and return an iterator over `(key, value)`\n"
"tuples in the order `sorted(records, key=itemgetter(0), reverse=reverse)` gives\n"
"(stable). Otherwise None, the lists untouched.");

static PyObject *
sorted_int_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("sorted_int_pairs", nargs, 2) < 0)
        return NULL;
    PyObject *batches = args[0];
    if (!PyList_CheckExact(batches)) {
        PyErr_SetString(PyExc_TypeError, "sorted_int_pairs() needs a list of lists");
        return NULL;
    }
    int reverse = PyObject_IsTrue(args[1]);
    if (reverse < 0)
        return NULL;
    Py_ssize_t nb = PyList_GET_SIZE(batches), n = 0;
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *batch = PyList_GET_ITEM(batches, b);
        if (!PyList_CheckExact(batch)) {
            PyErr_SetString(PyExc_TypeError, "sorted_int_pairs() needs a list of lists");
            return NULL;
        }
        n += PyList_GET_SIZE(batch);
    }
    KeyValue *a = PyMem_Malloc(sizeof(KeyValue) * (n ? n : 1));
    if (a == NULL)
        return PyErr_NoMemory();
    /* first pass: check every record, copy its key out; no reference taken yet */
    unsigned long long all_or = 0, all_and = ~0ULL;
    Py_ssize_t i = 0;
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *batch = PyList_GET_ITEM(batches, b);
        Py_ssize_t m = PyList_GET_SIZE(batch);
        for (Py_ssize_t j = 0; j < m; j++, i++) {
            PyObject *r = PyList_GET_ITEM(batch, j);
            if (i >= n || !PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 2
                    || !PyLong_CheckExact(PyTuple_GET_ITEM(r, 0)))
                goto refuse;
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(r, 0), &overflow);
            if (overflow || (v == -1 && PyErr_Occurred())) {
                PyErr_Clear();
                goto refuse;
            }
            unsigned long long u = order_key(v, reverse);
            a[i].key = u;
            a[i].v.obj = PyTuple_GET_ITEM(r, 1);
            a[i].tag = VAL_OBJ;
            all_or |= u;
            all_and &= u;
        }
    }
    if (i != n)
        goto refuse;
    for (i = 0; i < n; i++)
        Py_INCREF(a[i].v.obj);
    /* the records are no longer needed: freed here, in the order they were made */
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *batch = PyList_GET_ITEM(batches, b);
        if (PyList_SetSlice(batch, 0, PyList_GET_SIZE(batch), NULL) < 0) {
            kv_release(a, 0, n);
            return NULL;
        }
    }
    return sorted_pairs_make(a, n, all_or ^ all_and, reverse);
refuse:
    PyMem_Free(a);
    Py_RETURN_NONE;
}

/* -- marshal (version 2) of a list of 2-tuples, read without making its objects -- */

typedef struct {
    const unsigned char *p, *end;
} Reader;

static int
read_i32(Reader *r, long *out)
{
    if (r->end - r->p < 4)
        return -1;
    const unsigned char *p = r->p;
    unsigned long x = (unsigned long)p[0] | ((unsigned long)p[1] << 8)
                      | ((unsigned long)p[2] << 16) | ((unsigned long)p[3] << 24);
    *out = (long)(int32_t)x;
    r->p += 4;
    return 0;
}

/* an int written as 'i' (32 bits) or 'l' (15-bit digits) that fits in 64 bits */
static int
read_int(Reader *r, int code, long long *out)
{
    long n;
    if (read_i32(r, &n) < 0)
        return -1;
    if (code == 'i') {
        *out = n;
        return 0;
    }
    long size = n < 0 ? -n : n;
    if (size == 0 || size > 5 || r->end - r->p < 2 * size)
        return -1;
    unsigned long long mag = 0;
    for (long d = size - 1; d >= 0; d--) {
        unsigned digit = r->p[2 * d] | (r->p[2 * d + 1] << 8);
        if (digit > 0x7fff || mag > (~0ULL >> 15))
            return -1;
        mag = (mag << 15) | digit;
    }
    r->p += 2 * size;
    if (n > 0) {
        if (mag > 0x7fffffffffffffffULL)
            return -1;
        *out = (long long)mag;
    }
    else {
        if (mag > 0x8000000000000000ULL)
            return -1;
        *out = (long long)(0 - mag);
    }
    return 0;
}

/* one body: '[' n, then n times '(' 2, key, value; -1 when it is anything else */
static Py_ssize_t
parse_pairs(Reader *r, KeyValue *a, Py_ssize_t room, int reverse,
            unsigned long long *all_or, unsigned long long *all_and)
{
    long n, m;
    if (r->p >= r->end || *r->p++ != '[' || read_i32(r, &n) < 0 || n < 0 || n > room)
        return -1;
    for (long i = 0; i < n; i++) {
        if (r->end - r->p < 7 || *r->p++ != '(' || read_i32(r, &m) < 0 || m != 2)
            return -1;
        int code = *r->p++;
        long long k;
        if ((code != 'i' && code != 'l') || read_int(r, code, &k) < 0)
            return -1;
        unsigned long long u = order_key(k, reverse);
        a[i].key = u;
        *all_or |= u;
        *all_and &= u;
        if (r->p >= r->end)
            return -1;
        code = *r->p++;
        switch (code) {
        case 'N':
            a[i].tag = VAL_OBJ;
            a[i].v.obj = Py_None;
            break;
        case 'T':
            a[i].tag = VAL_OBJ;
            a[i].v.obj = Py_True;
            break;
        case 'F':
            a[i].tag = VAL_OBJ;
            a[i].v.obj = Py_False;
            break;
        case 'i':
        case 'l':
            a[i].tag = VAL_INT;
            if (read_int(r, code, &a[i].v.i) < 0)
                return -1;
            break;
        case 'g':
            if (r->end - r->p < 8)
                return -1;
            a[i].tag = VAL_FLOAT;
            a[i].v.f = PyFloat_Unpack8((const char *)r->p, 1);
            if (a[i].v.f == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return -1;
            }
            r->p += 8;
            break;
        default:
            return -1;
        }
    }
    return r->p == r->end ? n : -1;
}

PyDoc_STRVAR(sort_marshaled_pairs_doc,
"sort_marshaled_pairs(bodies, counts, reverse) -> iterator or None\n\n"
"When each bytes object of the list `bodies` is the marshal (version 2) of a list of\n"
"`counts[i]` 2-tuples whose keys are ints that fit in 64 bits and whose values are None,\n"
"bools, such ints or floats: an iterator over those `(key, value)` tuples in the order\n"
"`sorted(records, key=itemgetter(0), reverse=reverse)` gives (stable), made without\n"
"decoding the bodies into objects. Otherwise None.");

static PyObject *
sort_marshaled_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("sort_marshaled_pairs", nargs, 3) < 0)
        return NULL;
    PyObject *bodies = args[0], *counts = args[1];
    if (!PyList_CheckExact(bodies) || !PyList_CheckExact(counts)
            || PyList_GET_SIZE(bodies) != PyList_GET_SIZE(counts)) {
        PyErr_SetString(PyExc_TypeError,
                        "sort_marshaled_pairs() needs two lists of the same length");
        return NULL;
    }
    int reverse = PyObject_IsTrue(args[2]);
    if (reverse < 0)
        return NULL;
    Py_ssize_t nb = PyList_GET_SIZE(bodies), n = 0;
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *body = PyList_GET_ITEM(bodies, b);
        Py_ssize_t c = PyLong_AsSsize_t(PyList_GET_ITEM(counts, b));
        if (c == -1 && PyErr_Occurred())
            return NULL;
        if (!PyBytes_CheckExact(body) || c < 0) {
            PyErr_SetString(PyExc_TypeError,
                            "sort_marshaled_pairs() needs bytes and counts >= 0");
            return NULL;
        }
        n += c;
    }
    KeyValue *a = PyMem_Malloc(sizeof(KeyValue) * (n ? n : 1));
    if (a == NULL)
        return PyErr_NoMemory();
    unsigned long long all_or = 0, all_and = ~0ULL;
    Py_ssize_t i = 0;
    for (Py_ssize_t b = 0; b < nb; b++) {
        PyObject *body = PyList_GET_ITEM(bodies, b);
        Reader r = {(const unsigned char *)PyBytes_AS_STRING(body),
                    (const unsigned char *)PyBytes_AS_STRING(body) + PyBytes_GET_SIZE(body)};
        Py_ssize_t got = parse_pairs(&r, a + i, n - i, reverse, &all_or, &all_and);
        if (got < 0 || got != PyLong_AsSsize_t(PyList_GET_ITEM(counts, b))) {
            PyMem_Free(a); /* no references taken: None, True, False are not counted yet */
            Py_RETURN_NONE;
        }
        i += got;
    }
    for (i = 0; i < n; i++)
        if (a[i].tag == VAL_OBJ)
            Py_INCREF(a[i].v.obj);
    return sorted_pairs_make(a, n, all_or ^ all_and, reverse);
}

/* -- encode_sorted_pairs: a map task's pairs as sorted, marshaled batches -- */

static int
extract_value(PyObject *v, KeyValue *e)
{
    if (v == Py_None || v == Py_True || v == Py_False) {
        e->tag = VAL_OBJ;
        e->v.obj = v;
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        e->v.i = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (e->v.i == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
        e->tag = VAL_INT;
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        e->tag = VAL_FLOAT;
        e->v.f = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    return -1;
}

static unsigned char *
put_i32(unsigned char *p, long x)
{
    unsigned long u = (unsigned long)x;
    p[0] = u & 0xff;
    p[1] = (u >> 8) & 0xff;
    p[2] = (u >> 16) & 0xff;
    p[3] = (u >> 24) & 0xff;
    return p + 4;
}

/* an int as marshal writes it: 'i' and 32 bits when it fits, else 'l' and 15-bit digits */
static unsigned char *
put_int(unsigned char *p, long long v)
{
    if (v >= -2147483648LL && v <= 2147483647LL) {
        *p++ = 'i';
        return put_i32(p, (long)v);
    }
    unsigned long long mag = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    long ndigits = 0;
    for (unsigned long long m = mag; m; m >>= 15)
        ndigits++;
    *p++ = 'l';
    p = put_i32(p, v < 0 ? -ndigits : ndigits);
    for (long d = 0; d < ndigits; d++, mag >>= 15) {
        unsigned digit = (unsigned)(mag & 0x7fff);
        *p++ = digit & 0xff;
        *p++ = (digit >> 8) & 0xff;
    }
    return p;
}

#define MAX_PAIR_BYTES (5 + 2 * 15)  /* '(' 2, then two ints of 5 digits (or 'g' + 8) */

PyDoc_STRVAR(encode_sorted_pairs_doc,
"encode_sorted_pairs(records, batch) -> (bodies, first_keys, last_keys) or None\n\n"
"When every item of the list `records` is a 2-tuple whose key is an exact int that fits\n"
"in 64 bits and whose value is None, a bool, such an int or a float: the records sorted\n"
"by key (stable), cut into lists of `batch` records, each as the bytes marshal.dumps(...,\n"
"2) gives, with the first and last key of each. Otherwise None.");

static PyObject *
encode_sorted_pairs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("encode_sorted_pairs", nargs, 2) < 0)
        return NULL;
    PyObject *list = args[0];
    if (!PyList_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "encode_sorted_pairs() needs a list");
        return NULL;
    }
    Py_ssize_t batch;
    if (get_limit(args[1], &batch) < 0)
        return NULL;
    if (batch > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "batch is too large");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    KeyValue *a = PyMem_Malloc(sizeof(KeyValue) * (n ? n : 1));
    if (a == NULL)
        return PyErr_NoMemory();
    unsigned long long all_or = 0, all_and = ~0ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(list, i);
        if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 2
                || !PyLong_CheckExact(PyTuple_GET_ITEM(r, 0))
                || extract_value(PyTuple_GET_ITEM(r, 1), &a[i]) < 0)
            goto refuse;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(r, 0), &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            goto refuse;
        }
        a[i].key = order_key(v, 0);
        all_or |= a[i].key;
        all_and &= a[i].key;
    }
    /* None, True and False need no reference here: the records hold them until the
       bodies are written, and the bodies hold none. */
    for (Py_ssize_t i = 0; i < n; i++)
        if (a[i].tag == VAL_OBJ)
            a[i].tag = a[i].v.obj == Py_None ? 3 : a[i].v.obj == Py_True ? 4 : 5;
    PyObject *sorted = sorted_pairs_make(a, n, all_or ^ all_and, 0);
    if (sorted == NULL)
        return NULL;
    KeyValue *kv = ((SortedPairsObject *)sorted)->kv;
    Py_ssize_t nbatches = n ? (n + batch - 1) / batch : 0;
    PyObject *bodies = PyList_New(nbatches), *firsts = PyList_New(nbatches),
             *lasts = PyList_New(nbatches);
    if (bodies == NULL || firsts == NULL || lasts == NULL)
        goto fail;
    for (Py_ssize_t b = 0; b < nbatches; b++) {
        Py_ssize_t lo = b * batch, hi = lo + batch < n ? lo + batch : n;
        PyObject *body = PyBytes_FromStringAndSize(NULL, 5 + (hi - lo) * MAX_PAIR_BYTES);
        if (body == NULL)
            goto fail;
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(body);
        *p++ = '[';
        p = put_i32(p, (long)(hi - lo));
        for (Py_ssize_t i = lo; i < hi; i++) {
            *p++ = '(';
            p = put_i32(p, 2);
            p = put_int(p, (long long)(kv[i].key ^ 0x8000000000000000ULL));
            switch (kv[i].tag) {
            case 3:
                *p++ = 'N';
                break;
            case 4:
                *p++ = 'T';
                break;
            case 5:
                *p++ = 'F';
                break;
            case VAL_INT:
                p = put_int(p, kv[i].v.i);
                break;
            default:
                *p++ = 'g';
                if (PyFloat_Pack8(kv[i].v.f, (char *)p, 1) < 0) {
                    Py_DECREF(body);
                    goto fail;
                }
                p += 8;
            }
        }
        if (_PyBytes_Resize(&body, (char *)p - PyBytes_AS_STRING(body)) < 0)
            goto fail;
        PyList_SET_ITEM(bodies, b, body);
        PyObject *first = PyLong_FromLongLong(
            (long long)(kv[lo].key ^ 0x8000000000000000ULL));
        if (first == NULL)
            goto fail;
        PyList_SET_ITEM(firsts, b, first);
        PyObject *last = PyLong_FromLongLong(
            (long long)(kv[hi - 1].key ^ 0x8000000000000000ULL));
        if (last == NULL)
            goto fail;
        PyList_SET_ITEM(lasts, b, last);
    }
    /* no VAL_OBJ entries remain (tags 3-5 own nothing): the iterator frees the array */
    ((SortedPairsObject *)sorted)->pos = ((SortedPairsObject *)sorted)->n;
    Py_DECREF(sorted);
    PyObject *result = PyTuple_Pack(3, bodies, firsts, lasts);
    Py_DECREF(bodies);
    Py_DECREF(firsts);
    Py_DECREF(lasts);
    return result;
fail:
    ((SortedPairsObject *)sorted)->pos = ((SortedPairsObject *)sorted)->n;
    Py_DECREF(sorted);
    Py_XDECREF(bodies);
    Py_XDECREF(firsts);
    Py_XDECREF(lasts);
    return NULL;
refuse:
    PyMem_Free(a);
    Py_RETURN_NONE;
}

/* -- encode_pairs: a batch of pairs as marshal writes it, at C speed -- */

/* bytes marshal (version 2) writes for an item of a pair, or -1 when it is not one of
   the types written here (exact int within 64 bits, None, bool, float, str) */
static Py_ssize_t
item_size(PyObject *x, Py_ssize_t *utf8_len)
{
    if (PyLong_CheckExact(x)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
        if (v >= -2147483648LL && v <= 2147483647LL)
            return 5;
        unsigned long long mag = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
        Py_ssize_t nd = 0;
        for (; mag; mag >>= 15)
            nd++;
        return 5 + 2 * nd;
    }
    if (x == Py_None || x == Py_True || x == Py_False)
        return 1;
    if (PyFloat_CheckExact(x))
        return 9;
    if (PyUnicode_CheckExact(x)) {
        const char *u = PyUnicode_AsUTF8AndSize(x, utf8_len);
        if (u == NULL || *utf8_len > 0x7fffffff) {  /* surrogates: marshal's own way */
            PyErr_Clear();
            return -1;
        }
        return 5 + *utf8_len;
    }
    return -1;
}

static unsigned char *
put_item(unsigned char *p, PyObject *x)
{
    if (PyLong_CheckExact(x))
        return put_int(p, PyLong_AsLongLong(x));
    if (x == Py_None) {
        *p++ = 'N';
        return p;
    }
    if (x == Py_True) {
        *p++ = 'T';
        return p;
    }
    if (x == Py_False) {
        *p++ = 'F';
        return p;
    }
    if (PyFloat_CheckExact(x)) {
        *p++ = 'g';
        PyFloat_Pack8(PyFloat_AS_DOUBLE(x), (char *)p, 1);
        return p + 8;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(x, &n);
    *p++ = 'u';
    p = put_i32(p, (long)n);
    memcpy(p, u, n);
    return p + n;
}

PyDoc_STRVAR(encode_pairs_doc,
"encode_pairs(records) -> bytes or None\n\n"
"marshal.dumps(records, 2) when `records` is a list of 2-tuples whose items are exact\n"
"ints within 64 bits, None, bools, floats or str; otherwise None.");

static PyObject *
encode_pairs(PyObject *self, PyObject *list)
{
    if (!PyList_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "encode_pairs() needs a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list), size = 5, ulen;
    if (n > 0x7fffffff)
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(list, i);
        if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 2)
            Py_RETURN_NONE;
        Py_ssize_t a = item_size(PyTuple_GET_ITEM(r, 0), &ulen);
        if (a < 0)
            Py_RETURN_NONE;
        Py_ssize_t b = item_size(PyTuple_GET_ITEM(r, 1), &ulen);
        if (b < 0)
            Py_RETURN_NONE;
        size += 5 + a + b;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    *p++ = '[';
    p = put_i32(p, (long)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(list, i);
        *p++ = '(';
        p = put_i32(p, 2);
        p = put_item(p, PyTuple_GET_ITEM(r, 0));
        p = put_item(p, PyTuple_GET_ITEM(r, 1));
    }
    return out;
}

/* -- PairBuckets: a map task's records bucketed straight into marshaled batches -- */

typedef struct {
    unsigned char *data;
    Py_ssize_t len, cap, count;
} PairBuffer;

typedef struct {
    PyObject_HEAD
    PairBuffer *bufs;
    Py_ssize_t nparts, batch;
} PairBucketsObject;

static PyTypeObject PairBucketsType;

PyDoc_STRVAR(pair_buckets_doc,
"pair_buckets(nparts, batch) -> PairBuckets\n\n"
"Per-partition buffers of records written as marshal (version 2) writes them; see\n"
"PairBuckets.fill.");

static PyObject *
pair_buckets_make(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("pair_buckets", nargs, 2) < 0)
        return NULL;
    Py_ssize_t nparts, batch;
    if (get_limit(args[0], &nparts) < 0 || get_limit(args[1], &batch) < 0)
        return NULL;
    if (batch > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "batch is too large");
        return NULL;
    }
    PairBucketsObject *b = PyObject_New(PairBucketsObject, &PairBucketsType);
    if (b == NULL)
        return NULL;
    b->bufs = PyMem_Calloc(nparts, sizeof(PairBuffer));
    b->nparts = nparts;
    b->batch = batch;
    if (b->bufs == NULL) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    return (PyObject *)b;
}

static void
pair_buckets_dealloc(PairBucketsObject *b)
{
    if (b->bufs != NULL) {
        for (Py_ssize_t i = 0; i < b->nparts; i++)
            PyMem_Free(b->bufs[i].data);
        PyMem_Free(b->bufs);
    }
    PyObject_Free(b);
}

/* move buffer p into `ready` as (p, count, body) */
static int
pair_buckets_emit(PairBucketsObject *b, Py_ssize_t p, PyObject *ready)
{
    PairBuffer *buf = &b->bufs[p];
    PyObject *body = PyBytes_FromStringAndSize(NULL, 5 + buf->len);
    if (body == NULL)
        return -1;
    unsigned char *q = (unsigned char *)PyBytes_AS_STRING(body);
    *q++ = '[';
    q = put_i32(q, (long)buf->count);
    memcpy(q, buf->data, buf->len);
    PyObject *item = Py_BuildValue("(nnN)", p, buf->count, body);
    if (item == NULL)
        return -1;
    int r = PyList_Append(ready, item);
    Py_DECREF(item);
    buf->len = buf->count = 0;
    return r;
}

PyDoc_STRVAR(pair_buckets_fill_doc,
"fill(it, buckets, fast, get_partition, limit, ready) -> n\n\n"
"As bucket_hash(it, buckets, fast, get_partition, limit), except that a record that\n"
"encode_pairs() can write, of a partition whose list in `buckets` is empty, is written\n"
"into this object's buffer of that partition instead; a buffer reaching `batch`\n"
"records, or about to be followed by a record of the list, is appended to the list\n"
"`ready` as (partition, count, marshaled body). The records of a partition thus come\n"
"out in their order: `ready` bodies first, then the list.");

static PyObject *
pair_buckets_fill(PairBucketsObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("fill", nargs, 6) < 0)
        return NULL;
    PyObject *it = args[0], *buckets = args[1], *get_partition = args[3], *ready = args[5];
    Py_ssize_t nparts, limit, n = 0, ulen;
    int fast = PyObject_IsTrue(args[2]);
    if (fast < 0 || check_buckets(buckets, &nparts) < 0 || get_limit(args[4], &limit) < 0)
        return NULL;
    if (nparts != b->nparts || !PyList_CheckExact(ready)) {
        PyErr_SetString(PyExc_TypeError, "fill() needs nparts buckets and a ready list");
        return NULL;
    }
    if (!PyIter_Check(it)) {
        PyErr_SetString(PyExc_TypeError, "fill() needs an iterator");
        return NULL;
    }
    iternextfunc next = Py_TYPE(it)->tp_iternext;
    while (n < limit) {
        PyObject *kv = next(it);
        if (kv == NULL) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_StopIteration))
                    return NULL;
                PyErr_Clear();
            }
            break;
        }
        PyObject *k = first_item(kv);
        if (k == NULL) {
            Py_DECREF(kv);
            return NULL;
        }
        Py_ssize_t p = key_partition(get_partition, k, nparts, fast);
        Py_DECREF(k);
        if (p < 0) {
            Py_DECREF(kv);
            return NULL;
        }
        PyObject *list = PyList_GET_ITEM(buckets, p);
        PairBuffer *buf = &b->bufs[p];
        Py_ssize_t a = -1, c = -1;
        if (PyList_GET_SIZE(list) == 0 && PyTuple_CheckExact(kv) && PyTuple_GET_SIZE(kv) == 2
                && (a = item_size(PyTuple_GET_ITEM(kv, 0), &ulen)) >= 0
                && (c = item_size(PyTuple_GET_ITEM(kv, 1), &ulen)) >= 0) {
            Py_ssize_t need = buf->len + 5 + a + c;
            if (need > buf->cap) {
                Py_ssize_t cap = buf->cap ? buf->cap : 4096;
                while (cap < need)
                    cap *= 2;
                unsigned char *d = PyMem_Realloc(buf->data, cap);
                if (d == NULL) {
                    Py_DECREF(kv);
                    return PyErr_NoMemory();
                }
                buf->data = d;
                buf->cap = cap;
            }
            unsigned char *q = buf->data + buf->len;
            *q++ = '(';
            q = put_i32(q, 2);
            q = put_item(q, PyTuple_GET_ITEM(kv, 0));
            q = put_item(q, PyTuple_GET_ITEM(kv, 1));
            buf->len = q - buf->data;
            buf->count++;
            Py_DECREF(kv);
            if (buf->count >= b->batch && pair_buckets_emit(b, p, ready) < 0)
                return NULL;
        }
        else {
            if (buf->count && pair_buckets_emit(b, p, ready) < 0) {
                Py_DECREF(kv);
                return NULL;
            }
            int r = PyList_Append(list, kv);
            Py_DECREF(kv);
            if (r < 0)
                return NULL;
        }
        n++;
    }
    return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(pair_buckets_flush_doc,
"flush(ready) -> None\n\nAppend every non-empty buffer to `ready` (see fill).");

static PyObject *
pair_buckets_flush(PairBucketsObject *b, PyObject *ready)
{
    if (!PyList_CheckExact(ready)) {
        PyErr_SetString(PyExc_TypeError, "flush() needs a list");
        return NULL;
    }
    for (Py_ssize_t p = 0; p < b->nparts; p++)
        if (b->bufs[p].count && pair_buckets_emit(b, p, ready) < 0)
            return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef pair_buckets_methods[] = {
    {"fill", (PyCFunction)(void (*)(void))pair_buckets_fill, METH_FASTCALL,
     pair_buckets_fill_doc},
    {"flush", (PyCFunction)pair_buckets_flush, METH_O, pair_buckets_flush_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PairBucketsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncspark._speedups.PairBuckets",
    .tp_basicsize = sizeof(PairBucketsObject),
    .tp_dealloc = (destructor)pair_buckets_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Per-partition marshaled batches (see pair_buckets()).",
    .tp_methods = pair_buckets_methods,
};

/* ---- IntSums: reduceByKey(operator.add) of int pairs, read from marshaled bodies ------
 *
 * An open-addressing table from 64-bit keys to 128-bit sums (two words: no sum of fewer
 * than 2**63 64-bit values overflows it), filled straight from the marshal bytes of
 * batches of (int, int) pairs: no key, value or tuple object is made until the sums are
 * read out, and a key costs 25 bytes of table instead of a dict entry and two ints.
 */

typedef struct {
    PyObject_HEAD
    long long *keys;
    unsigned long long *lo;
    long long *hi;
    unsigned char *used;
    Py_ssize_t cap, size, pos;  /* pos: next slot to read out */
    int reading;                /* once read from, nothing more can be added */
} IntSumsObject;

static unsigned long long
mix64(unsigned long long x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void
int_sums_free(IntSumsObject *t)
{
    PyMem_Free(t->keys);
    PyMem_Free(t->lo);
    PyMem_Free(t->hi);
    PyMem_Free(t->used);
    t->keys = NULL;
    t->lo = NULL;
    t->hi = NULL;
    t->used = NULL;
    t->cap = t->size = t->pos = 0;
}

static int
int_sums_alloc(IntSumsObject *t, Py_ssize_t cap)
{
    t->keys = PyMem_Malloc(sizeof(long long) * cap);
    t->lo = PyMem_Malloc(sizeof(unsigned long long) * cap);
    t->hi = PyMem_Malloc(sizeof(long long) * cap);
    t->used = PyMem_Calloc(cap, 1);
    if (t->keys == NULL || t->lo == NULL || t->hi == NULL || t->used == NULL) {
        int_sums_free(t);
        PyErr_NoMemory();
        return -1;
    }
    t->cap = cap;
    return 0;
}

static Py_ssize_t
int_sums_slot(IntSumsObject *t, long long key)
{
    Py_ssize_t mask = t->cap - 1, i = (Py_ssize_t)(mix64((unsigned long long)key) & mask);
    while (t->used[i] && t->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static int
int_sums_grow(IntSumsObject *t)
{
    IntSumsObject old = *t;
    if (int_sums_alloc(t, old.cap ? old.cap * 2 : 1024) < 0) {
        *t = old;
        return -1;
    }
    t->size = old.size;
    for (Py_ssize_t i = 0; i < old.cap; i++) {
        if (!old.used[i])
            continue;
        Py_ssize_t j = int_sums_slot(t, old.keys[i]);
        t->used[j] = 1;
        t->keys[j] = old.keys[i];
        t->lo[j] = old.lo[i];
        t->hi[j] = old.hi[i];
    }
    int_sums_free(&old);
    return 0;
}

PyDoc_STRVAR(int_sums_doc,
"int_sums() -> IntSums\n\n"
"An empty table of sums of int values per int key, added from marshaled batches of\n"
"pairs (`add_marshaled`); `nbytes` is the memory it holds; iterating gives each\n"
"(key, sum) pair once, in no particular order, and empties it.");

static PyTypeObject IntSumsType;

static PyObject *
int_sums_make(PyObject *self, PyObject *unused)
{
    IntSumsObject *t = PyObject_New(IntSumsObject, &IntSumsType);
    if (t == NULL)
        return NULL;
    t->keys = NULL;
    t->lo = NULL;
    t->hi = NULL;
    t->used = NULL;
    t->cap = t->size = t->pos = 0;
    t->reading = 0;
    return (PyObject *)t;
}

static void
int_sums_dealloc(IntSumsObject *t)
{
    int_sums_free(t);
    PyObject_Free(t);
}

PyDoc_STRVAR(int_sums_add_doc,
"add_marshaled(body) -> int\n\n"
"When the bytes `body` are the marshal (version 2) of a list of 2-tuples of ints that fit\n"
"in 64 bits: add each value to its key's sum and return the number of pairs; otherwise\n"
"-1, nothing added.");

static PyObject *
int_sums_add_marshaled(IntSumsObject *t, PyObject *body)
{
    if (!PyBytes_CheckExact(body)) {
        PyErr_SetString(PyExc_TypeError, "add_marshaled() needs bytes");
        return NULL;
    }
    if (t->reading) {
        PyErr_SetString(PyExc_RuntimeError, "IntSums: add_marshaled() after reading");
        return NULL;
    }
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(body),
                (const unsigned char *)PyBytes_AS_STRING(body) + PyBytes_GET_SIZE(body)};
    long n, m;
    if (r.p >= r.end || *r.p++ != '[' || read_i32(&r, &n) < 0 || n < 0
            || n > PyBytes_GET_SIZE(body) / 11)
        return PyLong_FromLong(-1);
    long long *pairs = PyMem_Malloc(sizeof(long long) * 2 * (n ? n : 1));
    if (pairs == NULL)
        return PyErr_NoMemory();
    /* parse the whole body first: a body that is not all int pairs adds nothing */
    for (long i = 0; i < n; i++) {
        int code;
        if (r.end - r.p < 7 || *r.p++ != '(' || read_i32(&r, &m) < 0 || m != 2
                || ((code = *r.p++) != 'i' && code != 'l')
                || read_int(&r, code, &pairs[2 * i]) < 0 || r.p >= r.end
                || ((code = *r.p++) != 'i' && code != 'l')
                || read_int(&r, code, &pairs[2 * i + 1]) < 0) {
            PyMem_Free(pairs);
            return PyLong_FromLong(-1);
        }
    }
    if (r.p != r.end) {
        PyMem_Free(pairs);
        return PyLong_FromLong(-1);
    }
    for (long i = 0; i < n; i++) {
        if ((t->size + 1) * 10 > t->cap * 7 && int_sums_grow(t) < 0) {
            PyMem_Free(pairs);
            return NULL;  /* what was added stays added: the caller fails the task */
        }
        long long key = pairs[2 * i], v = pairs[2 * i + 1];
        Py_ssize_t j = int_sums_slot(t, key);
        if (!t->used[j]) {
            t->used[j] = 1;
            t->keys[j] = key;
            t->lo[j] = (unsigned long long)v;
            t->hi[j] = v < 0 ? -1 : 0;
            t->size++;
        }
        else {
            unsigned long long lo = t->lo[j] + (unsigned long long)v;
            t->hi[j] += (v < 0 ? -1 : 0) + (lo < t->lo[j]);
            t->lo[j] = lo;
        }
    }
    PyMem_Free(pairs);
    return PyLong_FromLong(n);
}

static PyObject *
int_sums_sum(IntSumsObject *t, Py_ssize_t j)
{
    unsigned long long lo = t->lo[j];
    long long hi = t->hi[j];
    if ((hi == 0 && lo <= 0x7fffffffffffffffULL) || (hi == -1 && lo > 0x7fffffffffffffffULL))
        return PyLong_FromLongLong((long long)lo);
    /* hi * 2**64 + lo, in Python ints (sums beyond 64 bits are rare) */
    PyObject *h = PyLong_FromLongLong(hi), *l = PyLong_FromUnsignedLongLong(lo);
    PyObject *shift = PyLong_FromLong(64), *hs = NULL, *sum = NULL;
    if (h != NULL && l != NULL && shift != NULL && (hs = PyNumber_Lshift(h, shift)) != NULL)
        sum = PyNumber_Add(hs, l);
    Py_XDECREF(h);
    Py_XDECREF(l);
    Py_XDECREF(shift);
    Py_XDECREF(hs);
    return sum;
}

static PyObject *
int_sums_next(IntSumsObject *t)
{
    t->reading = 1;
    while (t->pos < t->cap && !t->used[t->pos])
        t->pos++;
    if (t->pos >= t->cap) {
        int_sums_free(t);
        return NULL;
    }
    Py_ssize_t j = t->pos++;
    PyObject *k = PyLong_FromLongLong(t->keys[j]), *v = int_sums_sum(t, j);
    if (k == NULL || v == NULL) {
        Py_XDECREF(k);
        Py_XDECREF(v);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(k);
        Py_DECREF(v);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, k);
    PyTuple_SET_ITEM(pair, 1, v);
    return pair;
}

static PyObject *
int_sums_nbytes(IntSumsObject *t, void *closure)
{
    return PyLong_FromSsize_t(t->cap * (Py_ssize_t)(3 * sizeof(long long) + 1));
}

static Py_ssize_t
int_sums_len(IntSumsObject *t)
{
    return t->size;
}

static PyMethodDef int_sums_methods[] = {
    {"add_marshaled", (PyCFunction)int_sums_add_marshaled, METH_O, int_sums_add_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef int_sums_getset[] = {
    {"nbytes", (getter)int_sums_nbytes, NULL, "bytes the table holds", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods int_sums_as_sequence = {
    .sq_length = (lenfunc)int_sums_len,
};

static PyTypeObject IntSumsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncspark._speedups.IntSums",
    .tp_basicsize = sizeof(IntSumsObject),
    .tp_dealloc = (destructor)int_sums_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sums of int values per int key (see int_sums()).",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)int_sums_next,
    .tp_methods = int_sums_methods,
    .tp_getset = int_sums_getset,
    .tp_as_sequence = &int_sums_as_sequence,
};

/* ---- sum_table: reduceByKey(operator.add)'s map-side combine of (key, int) records --
 * A dict fold makes a new int object for every merge (the sum) and frees the old one,
 * and finding a key's combiner again to store the sum is a second probe with a second
 * key comparison. This table keeps each key's sum as a C long long next to the key
 * (entries in insertion order, like a dict's; an index of int32 slots, at most half
 * full), so a record costs one hash, one probe and one comparison and makes no object.
 * Keys compare as a dict compares them (identity, then hash and ==; exact str keys by
 * their bytes). A value that is not an exact int within 64 bits, or a sum that would
 * leave 64 bits, stops `add` and is handed back: the caller carries on with a dict. */

typedef struct {
    PyObject *key;
    Py_hash_t hash;
    long long sum;
} SumEntry;

typedef struct {
    PyObject_HEAD
    SumEntry *entries;
    int *index;                 /* -1: empty slot; else an entry's position */
    Py_ssize_t size, room, slots, pos;
    Py_ssize_t key_bytes;       /* the keys' own sizes, as sys.getsizeof gives them */
    int busy;                   /* inside add(): user code (iterator, __eq__) may run */
    int reading;                /* items() started: nothing more can be added */
} SumTableObject;

static PyTypeObject SumTableType;

static Py_ssize_t
object_bytes(PyObject *k)
{
    if (PyUnicode_CheckExact(k)) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        if (PyUnicode_IS_COMPACT_ASCII(k))
            return (Py_ssize_t)sizeof(PyASCIIObject) + len + 1;
        return (Py_ssize_t)sizeof(PyCompactUnicodeObject) + (len + 1) * PyUnicode_KIND(k);
    }
    PyTypeObject *t = Py_TYPE(k);
    Py_ssize_t n = t->tp_basicsize;
    if (t->tp_itemsize) {
        Py_ssize_t items = Py_SIZE(k);
        n += (items < 0 ? -items : items) * t->tp_itemsize;
    }
    return n;
}

static void
sum_table_release(SumTableObject *t)
{
    if (t->entries != NULL) {
        for (Py_ssize_t i = 0; i < t->size; i++)
            Py_CLEAR(t->entries[i].key);
    }
    PyMem_Free(t->entries);
    PyMem_Free(t->index);
    t->entries = NULL;
    t->index = NULL;
    t->size = t->room = t->slots = t->pos = t->key_bytes = 0;
}

static int
sum_table_reindex(SumTableObject *t, Py_ssize_t slots)
{
    int *index = PyMem_Malloc(sizeof(int) * slots);
    if (index == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(index, 0xff, sizeof(int) * slots);
    size_t mask = (size_t)slots - 1;
    for (Py_ssize_t e = 0; e < t->size; e++) {
        size_t i = (size_t)mix64((unsigned long long)t->entries[e].hash) & mask;
        while (index[i] >= 0)
            i = (i + 1) & mask;
        index[i] = (int)e;
    }
    PyMem_Free(t->index);
    t->index = index;
    t->slots = slots;
    return 0;
}

/* Make room for one more entry (entries array and index); -1 with an error set. */
static int
sum_table_reserve(SumTableObject *t)
{
    if (t->size >= 0x3fffffff) {
        PyErr_SetString(PyExc_OverflowError, "sum_table: too many keys");
        return -1;
    }
    if (t->size == t->room) {
        Py_ssize_t room = t->room ? t->room * 2 : 256;
        SumEntry *e = PyMem_Realloc(t->entries, sizeof(SumEntry) * room);
        if (e == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->entries = e;
        t->room = room;
    }
    if ((t->size + 1) * 2 > t->slots)
        return sum_table_reindex(t, t->slots ? t->slots * 2 : 512);
    return 0;
}

/* Whether the stored key `a` (hash equal to k's) equals `k`: 1, 0, or -1 (error). */
static int
key_equal(PyObject *a, PyObject *k)
{
    if (a == k)
        return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(k)) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(a);
        if (len != PyUnicode_GET_LENGTH(k) || PyUnicode_KIND(a) != PyUnicode_KIND(k))
            return 0;
        return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(k),
                      (size_t)len * PyUnicode_KIND(a)) == 0;
    }
    return PyObject_RichCompareBool(a, k, Py_EQ);
}

PyDoc_STRVAR(sum_table_doc,
"sum_table() -> SumTable\n\n"
"An empty table of int sums per key, in insertion order: the map-side combine of\n"
"reduceByKey(operator.add) over records whose values are ints. `add(it, limit)` adds\n"
"records; `len()` is the number of keys; `nbytes` the memory it holds (its arrays and\n"
"the keys' sizes); `items()` gives each (key, sum) once, in the order the keys came.");

static PyObject *
sum_table_make(PyObject *self, PyObject *unused)
{
    SumTableObject *t = PyObject_GC_New(SumTableObject, &SumTableType);
    if (t == NULL)
        return NULL;
    t->entries = NULL;
    t->index = NULL;
    t->size = t->room = t->slots = t->pos = t->key_bytes = 0;
    t->busy = t->reading = 0;
    PyObject_GC_Track(t);
    return (PyObject *)t;
}

static int
sum_table_traverse(SumTableObject *t, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < t->size; i++)
        Py_VISIT(t->entries[i].key);
    return 0;
}

static int
sum_table_clear(SumTableObject *t)
{
    if (!t->busy)
        sum_table_release(t);
    return 0;
}

static void
sum_table_dealloc(SumTableObject *t)
{
    PyObject_GC_UnTrack(t);
    sum_table_release(t);
    PyObject_GC_Del(t);
}

/* One record into the table: 1 added, 0 handed back (not an exact int within 64 bits,
   or the sum would leave them), -1 error. */
static int
sum_table_put(SumTableObject *t, PyObject *k, PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow)
        return 0;
    if (x == -1 && PyErr_Occurred())
        return -1;
    Py_hash_t h = PyObject_Hash(k);
    if (h == -1)
        return -1;
    size_t mask = (size_t)t->slots - 1;
    size_t i = t->slots ? (size_t)mix64((unsigned long long)h) & mask : 0;
    if (t->slots) {
        int e;
        while ((e = t->index[i]) >= 0) {
            SumEntry *en = &t->entries[e];
            if (en->hash == h) {
                int eq = key_equal(en->key, k);
                if (eq < 0)
                    return -1;
                if (eq) {
                    long long s = en->sum;
                    if ((x > 0 && s > LLONG_MAX - x) || (x < 0 && s < LLONG_MIN - x))
                        return 0;
                    en->sum = s + x;
                    return 1;
                }
            }
            i = (i + 1) & mask;
        }
    }
    Py_ssize_t slots = t->slots;
    if (sum_table_reserve(t) < 0)
        return -1;
    if (t->slots != slots) {  /* reindexed: find the new key's empty slot again */
        mask = (size_t)t->slots - 1;
        i = (size_t)mix64((unsigned long long)h) & mask;
        while (t->index[i] >= 0)
            i = (i + 1) & mask;
    }
    SumEntry *en = &t->entries[t->size];
    en->key = Py_NewRef(k);
    en->hash = h;
    en->sum = x;
    t->index[i] = (int)t->size;
    t->size++;
    t->key_bytes += object_bytes(k);
    return 1;
}

PyDoc_STRVAR(sum_table_add_doc,
"add(it, limit) -> (n, pending)\n\n"
"Add up to `limit` (key, value) records of iterator `it`: a new key's sum is its value,\n"
"a known key's sum grows by it (`+`). `n` records were added; `pending` is None, or the\n"
"(key, value) record that stopped it (a value that is not an exact int within 64 bits,\n"
"or a sum that would leave them), taken from `it` and not added. `n` < `limit` and\n"
"`pending` None: `it` is exhausted. Records unpack as `k, v = record` does.");

static PyObject *
sum_table_add(SumTableObject *t, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args("add", nargs, 2) < 0)
        return NULL;
    PyObject *it = args[0];
    Py_ssize_t limit;
    if (!PyIter_Check(it)) {
        PyErr_SetString(PyExc_TypeError, "add() needs an iterator");
        return NULL;
    }
    if (get_limit(args[1], &limit) < 0)
        return NULL;
    if (t->reading || t->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        t->busy ? "SumTable: add() while adding" : "SumTable: add() after items()");
        return NULL;
    }
    t->busy = 1;
    Py_ssize_t n = 0;
    PyObject *pending = NULL;
    while (n < limit) {
        PyObject *item = PyIter_Next(it);
        if (item == NULL) {
            if (PyErr_Occurred())
                goto error;
            break;
        }
        PyObject *k, *v;
        int r = unpack2(item, &k, &v);
        Py_DECREF(item);
        if (r < 0)
            goto error;
        r = sum_table_put(t, k, v);
        if (r == 0) {
            pending = PyTuple_Pack(2, k, v);
            Py_DECREF(k);
            Py_DECREF(v);
            if (pending == NULL)
                goto error;
            break;
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (r < 0)
            goto error;
        n++;
    }
    t->busy = 0;
    if (pending == NULL)
        return Py_BuildValue("(nO)", n, Py_None);
    return Py_BuildValue("(nN)", n, pending);
error:
    t->busy = 0;
    return NULL;
}

static PyObject *
sum_table_items(SumTableObject *t, PyObject *unused)
{
    if (t->busy) {
        PyErr_SetString(PyExc_RuntimeError, "SumTable: items() while adding");
        return NULL;
    }
    if (t->reading) {
        PyErr_SetString(PyExc_RuntimeError, "SumTable: items() twice");
        return NULL;
    }
    t->reading = 1;
    return Py_NewRef(t);
}

static PyObject *
sum_table_next(SumTableObject *t)
{
    if (!t->reading) {
        PyErr_SetString(PyExc_TypeError, "iterate a SumTable through items()");
        return NULL;
    }
    if (t->pos >= t->size) {
        sum_table_release(t);
        return NULL;
    }
    SumEntry *en = &t->entries[t->pos];
    PyObject *v = PyLong_FromLongLong(en->sum);
    if (v == NULL)
        return NULL;
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(v);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, en->key);  /* the table's reference moves to the pair */
    en->key = NULL;
    PyTuple_SET_ITEM(pair, 1, v);
    t->pos++;
    return pair;
}

static PyObject *
sum_table_iter(SumTableObject *t)
{
    if (!t->reading) {
        PyErr_SetString(PyExc_TypeError, "iterate a SumTable through items()");
        return NULL;
    }
    return Py_NewRef(t);
}

static PyObject *
sum_table_nbytes(SumTableObject *t, void *closure)
{
    return PyLong_FromSsize_t(t->room * (Py_ssize_t)sizeof(SumEntry)
                              + t->slots * (Py_ssize_t)sizeof(int) + t->key_bytes);
}

static Py_ssize_t
sum_table_len(SumTableObject *t)
{
    return t->reading ? 0 : t->size;
}

static PyMethodDef sum_table_methods[] = {
    {"add", (PyCFunction)(void (*)(void))sum_table_add, METH_FASTCALL, sum_table_add_doc},
    {"items", (PyCFunction)sum_table_items, METH_NOARGS,
     "items() -> iterator of (key, sum) in insertion order, once; empties the table"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sum_table_getset[] = {
    {"nbytes", (getter)sum_table_nbytes, NULL, "bytes the table holds", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods sum_table_as_sequence = {
    .sq_length = (lenfunc)sum_table_len,
};

static PyTypeObject SumTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncspark._speedups.SumTable",
    .tp_basicsize = sizeof(SumTableObject),
    .tp_dealloc = (destructor)sum_table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Int sums per key in insertion order (see sum_table()).",
    .tp_traverse = (traverseproc)sum_table_traverse,
    .tp_clear = (inquiry)sum_table_clear,
    .tp_iter = (getiterfunc)sum_table_iter,
    .tp_iternext = (iternextfunc)sum_table_next,
    .tp_methods = sum_table_methods,
    .tp_getset = sum_table_getset,
    .tp_as_sequence = &sum_table_as_sequence,
};

static PyMethodDef speedups_methods[] = {
    {"sum_table", (PyCFunction)sum_table_make, METH_NOARGS, sum_table_doc},
    {"int_sums", (PyCFunction)int_sums_make, METH_NOARGS, int_sums_doc},
    {"encode_pairs", (PyCFunction)encode_pairs, METH_O, encode_pairs_doc},
    {"pair_buckets", (PyCFunction)(void (*)(void))pair_buckets_make, METH_FASTCALL,
     pair_buckets_doc},
    {"encode_sorted_pairs", (PyCFunction)(void (*)(void))encode_sorted_pairs,
     METH_FASTCALL, encode_sorted_pairs_doc},
    {"sorted_int_pairs", (PyCFunction)(void (*)(void))sorted_int_pairs, METH_FASTCALL,
     sorted_int_pairs_doc},
    {"sort_marshaled_pairs", (PyCFunction)(void (*)(void))sort_marshaled_pairs,
     METH_FASTCALL, sort_marshaled_pairs_doc},
    {"sort_int_keys", (PyCFunction)(void (*)(void))sort_int_keys, METH_FASTCALL,
     sort_int_keys_doc},
    {"count", (PyCFunction)count, METH_O, count_doc},
    {"pipe", (PyCFunction)(void (*)(void))pipe_new, METH_FASTCALL, pipe_doc},
    {"merge_into", (PyCFunction)(void (*)(void))merge_into, METH_FASTCALL, merge_into_doc},
    {"bucket_hash", (PyCFunction)(void (*)(void))bucket_hash, METH_FASTCALL,
     bucket_hash_doc},
    {"bucket_range", (PyCFunction)(void (*)(void))bucket_range, METH_FASTCALL,
     bucket_range_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "asyncspark._speedups",
    "The engine's per-record loops in C (see asyncspark/_accel.py for their twins).",
    0,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&PipeType) < 0 || PyType_Ready(&SortedPairsType) < 0
            || PyType_Ready(&IntSumsType) < 0 || PyType_Ready(&SumTableType) < 0
            || PyType_Ready(&PairBucketsType) < 0)
        return NULL;
    return PyModuleDef_Init(&speedups_module);
}
