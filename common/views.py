from django.shortcuts import render

from characters.selectors import story_list


def home(request):
    return render(request, "common/home.html", {"stories": story_list()})
