def source_significance(): pass
def parameter_upper_limit(): pass
