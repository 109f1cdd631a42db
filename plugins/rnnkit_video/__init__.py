"""Built-in task plugin ``video-action``: a frame encoder and a recurrent head over a video clip."""
