/* The definition of a function that another file declares CORDON_TRUSTED,
 * without the annotation (link-missing.c). */
int helper(int x) { return x * 2; }
