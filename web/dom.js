// The page's one element lookup, shared by its modules.
export const $ = (id) => document.getElementById(id);
