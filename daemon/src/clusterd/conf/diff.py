def diff(*a): pass
class ConfDiff: pass
