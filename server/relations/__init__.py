"""interops.relations.v1: declarant/declared links and employments."""
